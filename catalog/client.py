"""A small client for ``mosu push``: stream a file to the Action API and follow its ingest."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import requests

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
         on_progress: Callable[[int], None] | None = None, multipart_over: int = 64 << 20) -> dict[str, Any]:
    """Upload ``path`` to ``dataset``: a new version of resource ``resource`` if it exists
    (by name or id), else a new resource. Files over ``multipart_over`` bytes go in parts
    straight to object storage. Returns the resource dict."""
    pkg = client.action("package_show", id=dataset)
    name = resource or path.name
    existing = next((r for r in pkg["resources"] if name in (r["id"], r["name"])), None)
    target = {"id": existing["id"]} if existing else {"package_id": pkg["id"], "name": name}
    if path.stat().st_size > multipart_over:
        return push_parts(client, path, target, on_progress)
    if existing is not None:
        return client.upload("resource_patch", target, path, on_progress)
    return client.upload("resource_create", target, path, on_progress)


def push_parts(client: Client, path: Path, target: dict[str, str],
               on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The multipart path: each part PUT to its presigned URL, parts already stored skipped."""
    up = client.action("resource_upload_start", filename=path.name, size=path.stat().st_size, **target)
    done = {p["part_number"] for p in client.action("resource_upload_show", upload_id=up["upload_id"])["parts"]}
    with open(path, "rb") as fh:
        for number in range(1, up["part_count"] + 1):
            fh.seek((number - 1) * up["part_size"])
            chunk = fh.read(up["part_size"])  # one part in memory at a time (16 MB by default)
            if number not in done:
                url = client.action("resource_upload_part", upload_id=up["upload_id"], part_number=number)["url"]
                resp = requests.put(url, data=chunk, timeout=600)
                if resp.status_code != 200:
                    raise ApiError(resp.status_code, {"message": f"part {number} was refused by object storage"})
            if on_progress:
                on_progress(len(chunk))
    return client.action("resource_upload_complete", upload_id=up["upload_id"])


def follow(client: Client, resource_id: str, on_status: Callable[[dict], None], timeout: float = 86_400,
           poll: float = 0.5) -> dict[str, Any]:
    """Poll ``ingest_status_show`` until the job is done or failed, reporting each change."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status = client.action("ingest_status_show", id=resource_id)
        key = (status["state"], status["stage"], json.dumps(status["progress"], sort_keys=True))
        if key != last:
            on_status(status)
            last = key
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(poll)
    raise TimeoutError(f"ingest of {resource_id} did not finish in {timeout:.0f} s")


def default_url() -> str:
    return os.environ.get("MOSU_URL", "http://127.0.0.1:5000")
