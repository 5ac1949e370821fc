"""A small client for ``mosu push``: stream a file to the Action API and follow its ingest."""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import requests

from catalog.cli import resume
from catalog.cli.resume import UploadKey, UploadState
from catalog.versions.lifecycle import JobState

CHUNK = 1 << 20


class MultipartFile:
    """A multipart/form-data body read from disk as it is sent, with a known length.

    requests streams any object with ``read`` and a length, so a multi-GB file
    never sits in memory; ``on_progress`` sees every chunk of the file (for a progress bar).
    """

    def __init__(self, fields: dict[str, str], field: str, path: Path,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.boundary = "mosu" + secrets.token_hex(16)
        head = b""
        for name, value in fields.items():
            head += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                     f"{value}\r\n").encode()
        filename = path.name.replace('"', "_")
        head += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        self._parts = [head, path, f"\r\n--{self.boundary}--\r\n".encode()]
        self.len = len(head) + path.stat().st_size + len(self._parts[2])
        self._stream = self._iterate()
        self._buffer = b""
        self._on_progress = on_progress

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _iterate(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
            else:
                with open(part, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        if self._on_progress:  # the file's bytes, as they leave for the socket
                            self._on_progress(len(chunk))
                        yield chunk

    def __len__(self) -> int:
        return self.len

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            nxt = next(self._stream, None)
            if nxt is None:
                break
            self._buffer += nxt
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class ApiError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message") or json.dumps(error))
        self.status, self.error = status, error


class Client:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = token

    def _result(self, resp: requests.Response) -> Any:
        try:
            body = resp.json()
        except ValueError:
            raise ApiError(resp.status_code, {"message": f"HTTP {resp.status_code} from {self.url}"}) from None
        if not body.get("success"):
            raise ApiError(resp.status_code, body.get("error") or {})
        return body["result"]

    def action(self, action_name: str, /, **data: Any) -> Any:
        return self._result(self.session.post(f"{self.url}/api/3/action/{action_name}", json=data, timeout=60))

    def upload(self, name: str, fields: dict[str, str], path: Path,
               on_progress: Callable[[int], None] | None = None) -> Any:
        body = MultipartFile(fields, "upload", path, on_progress)
        resp = self.session.post(f"{self.url}/api/3/action/{name}", data=body,
                                 headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
                                 timeout=None)
        return self._result(resp)


def push(client: Client, path: Path, dataset: str, resource: str | None,
         on_progress: Callable[[int], None] | None = None, multipart_over: int = 64 << 20,
         state: UploadState | None = None, on_note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Upload ``path`` to ``dataset``: a new version of resource ``resource`` if it exists
    (by name or id), else a new resource. Files over ``multipart_over`` bytes go in parts
    straight to object storage, resuming an upload remembered in ``state``. Returns the resource dict.

    The server reads a whole request before answering it, so a refusal (not logged in, not an
    editor, too large) is asked for first, with ``resource_upload_check``: it costs one small
    request, where learning it from the upload would cost sending the whole file (the multipart
    path asks ``resource_upload_start``, which checks the same before any part is sent)."""
    pkg = client.action("package_show", id=dataset)
    name = resource or path.name
    existing = next((r for r in pkg["resources"] if name in (r["id"], r["name"])), None)
    target = {"id": existing["id"]} if existing else {"package_id": pkg["id"], "name": name}
    size = path.stat().st_size
    if size > multipart_over:
        return push_parts(client, path, target, on_progress, state=state, on_note=on_note)
    client.action("resource_upload_check", size=size, **target)
    if existing is not None:
        return client.upload("resource_patch", target, path, on_progress)
    return client.upload("resource_create", target, path, on_progress)


class UploadInterrupted(Exception):
    """A part could not be stored even after retries. The upload stays open on the server with the
    parts stored so far, so running the same push again resumes it (when ``state`` remembers it)."""

    def __init__(self, upload_id: str, part: int, part_count: int, problem: str, attempts: int,
                 remembered: bool) -> None:
        hint = ("run the same command again to resume it" if remembered
                else "resume it with resource_upload_show and resource_upload_part")
        super().__init__(f"part {part} of {part_count} could not be stored after {attempts} attempts "
                         f"({problem}); upload {upload_id} stays open: {hint}")
        self.upload_id, self.part, self.problem = upload_id, part, problem


RETRY_DELAYS = (1.0, 4.0, 15.0)
"""Seconds to wait before each new attempt at a part: long enough for a flapping link or a
restarting storage node, short enough that a dead one is reported within half a minute."""


def push_parts(client: Client, path: Path, target: dict[str, str],
               on_progress: Callable[[int], None] | None = None, *, state: UploadState | None = None,
               on_note: Callable[[str], None] | None = None,
               retry_delays: Sequence[float] = RETRY_DELAYS) -> dict[str, Any]:
    """The multipart path: each part PUT to its presigned URL, then ``resource_upload_complete``.

    With ``state``, an open upload of the same file to the same target from an earlier run is
    resumed (only its missing parts are sent), a new one is remembered until it completes, and
    a remembered upload that is gone on the server is forgotten. A part that fails with a
    connection error or a 5xx is retried after each of ``retry_delays`` with a fresh URL.
    """
    note = on_note or (lambda _message: None)
    size = path.stat().st_size
    key = resume.file_key(client.url, target, path) if state is not None else None
    shown = _resumable(client, state, key, target, size, note) if state is not None and key is not None else None
    if shown is None:
        up = client.action("resource_upload_start", filename=path.name, size=size, **target)
        upload_id, part_size, part_count = up["upload_id"], up["part_size"], up["part_count"]
        done: set[int] = set()
        remembered = _remember(state, key, upload_id, note)
    else:
        upload_id, part_size, part_count = shown["upload_id"], shown["part_size"], shown["part_count"]
        done = {p["part_number"] for p in shown["parts"]
                if p["size"] == min(part_size, size - (p["part_number"] - 1) * part_size)}
        remembered = True
        note(f"resuming upload {upload_id}: {len(done)} of {part_count} parts already stored")
        if on_progress and done:
            on_progress(sum(min(part_size, size - (n - 1) * part_size) for n in done))
    with open(path, "rb") as fh:
        for number in range(1, part_count + 1):
            if number in done:
                continue
            fh.seek((number - 1) * part_size)
            chunk = fh.read(part_size)  # one part in memory at a time (16 MB by default)
            _put_part(client, upload_id, number, part_count, chunk, retry_delays, note, remembered)
            if on_progress:
                on_progress(len(chunk))
    result = client.action("resource_upload_complete", upload_id=upload_id)
    if state is not None and key is not None:
        with contextlib.suppress(OSError):
            state.drop_key(key)
    return result


def _resumable(client: Client, state: UploadState, key: UploadKey, target: dict[str, str], size: int,
               note: Callable[[str], None]) -> dict[str, Any] | None:
    """The ``resource_upload_show`` of the remembered upload for ``key`` if it can be resumed;
    otherwise None, with whatever was remembered for this file and target forgotten."""
    for kid, old in state.superseded(key).items():  # the file changed since: its upload can never finish
        with contextlib.suppress(ApiError):
            client.action("resource_upload_abort", upload_id=old)
        with contextlib.suppress(OSError):
            state.drop(kid)
    upload_id = state.get(key)
    if upload_id is None:
        return None
    try:
        shown = client.action("resource_upload_show", upload_id=upload_id)
    except ApiError as exc:
        if exc.status not in (404, 409):  # Not Found (gone, or another user's) / Validation (completed, aborted)
            raise
        note(f"upload {upload_id} cannot be resumed ({exc}); starting a new one")
        with contextlib.suppress(OSError):
            state.drop_key(key)
        return None
    if (shown["size"] != size or shown["part_count"] != math.ceil(size / shown["part_size"])
            or ("id" in target and shown["resource_id"] != target["id"])):
        note(f"upload {upload_id} does not match {key.path} any more; starting a new one")
        with contextlib.suppress(ApiError):
            client.action("resource_upload_abort", upload_id=upload_id)
        with contextlib.suppress(OSError):
            state.drop_key(key)
        return None
    return shown


def _remember(state: UploadState | None, key: UploadKey | None, upload_id: str,
              note: Callable[[str], None]) -> bool:
    """Record a new upload so a later run can resume it; a state file that cannot be written
    costs only that, so it is reported and the push goes on."""
    if state is None or key is None:
        return False
    try:
        state.put(key, upload_id)
    except OSError as exc:
        note(f"cannot write {state.path} ({exc.strerror or exc}): a broken upload will not resume")
        return False
    return True


def _put_part(client: Client, upload_id: str, number: int, part_count: int, chunk: bytes,
              retry_delays: Sequence[float], note: Callable[[str], None], remembered: bool) -> None:
    """PUT one part, retrying connection errors and 5xx answers with a fresh presigned URL each time."""
    delays = [*retry_delays, None]
    for attempt, delay in enumerate(delays, 1):
        try:
            url = client.action("resource_upload_part", upload_id=upload_id, part_number=number)["url"]
            resp = requests.put(url, data=chunk, timeout=600)
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem = f"connection failed: {exc.__class__.__name__}"
        except ApiError as exc:
            if exc.status < 500:
                raise
            problem = f"HTTP {exc.status} from the catalog"
        else:
            if resp.status_code == 200:
                return
            if resp.status_code < 500:
                raise ApiError(resp.status_code, {"message": f"part {number} was refused by object storage"})
            problem = f"HTTP {resp.status_code} from object storage"
        if delay is None:
            raise UploadInterrupted(upload_id, number, part_count, problem, attempt, remembered)
        note(f"part {number} of {part_count}: {problem}; retrying in {delay:g} s")
        time.sleep(delay)


def follow(client: Client, resource_id: str, on_status: Callable[[dict], None], timeout: float = 86_400,
           poll: float = 0.5) -> dict[str, Any]:
    """Poll ``ingest_status_show`` until the job is done or failed, reporting each change. A job that
    is done left its version published (``version_status`` ready) or held for an acknowledgement."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status = client.action("ingest_status_show", id=resource_id)
        key = (status["state"], status["stage"], json.dumps(status["progress"], sort_keys=True))
        if key != last:
            on_status(status)
            last = key
        if status["state"] in (JobState.DONE, JobState.FAILED):
            return status
        time.sleep(poll)
    raise TimeoutError(f"ingest of {resource_id} did not finish in {timeout:.0f} s")


def default_url() -> str:
    return os.environ.get("MOSU_URL", "http://127.0.0.1:5000")
