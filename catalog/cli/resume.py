"""What ``mosu push`` remembers between runs, so that a re-run resumes a large upload.

Why: a multi-GB push broken by a dropped connection, a closed laptop or Ctrl-C
would otherwise start again from byte 0, although the server still holds every
part stored so far (``resource_upload_show``). The client only has to remember
which upload it opened for which file; this module is that memory.

The state file is ``uploads.json`` in ``$MOSU_STATE_DIR``, else
``$XDG_STATE_HOME/mosu``, else ``~/.local/state/mosu``. It maps an
:class:`UploadKey` (server, target resource, and the file's identity) to the
``upload_id`` the server gave. It holds no secret (an upload id is useless
without the token that opened it) but it does say which files a user uploads
where, so it is private: mode 0600 in a 0700 directory. It is written
atomically (a temporary file, then ``os.replace``) under an advisory lock, so
two pushes at once neither corrupt it nor lose each other's entries.

The server stays the source of truth: an entry is a hint, checked with
``resource_upload_show`` before use and forgotten when the upload is gone.
Losing or deleting the file costs a resume, never data.

The key logic is pure functions over a plain dict; reading the file, the
clock and the disk happen only in :func:`file_key` and :class:`UploadState`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; the atomic replace still keeps the file whole
    fcntl = None  # type: ignore[assignment]

FILENAME = "uploads.json"
FORMAT = 1
FINGERPRINT_BYTES = 1 << 20

State = dict[str, Any]
"""The file's content: ``{"format": 1, "uploads": {key_id: entry}}``; an entry is an
:class:`UploadKey`'s fields plus ``upload_id`` and ``started``."""


@dataclass(frozen=True)
class UploadKey:
    """Which upload a push may resume: the same server and target, and the same file.

    ``size`` and ``mtime_ns`` notice almost every change to the file for the cost of a
    ``stat``; ``fingerprint`` (SHA-256 of its first and last MiB) catches a file replaced
    by another of the same size and time, e.g. copied with ``cp -p``, for two reads.
    A change in the middle that keeps size and mtime goes unnoticed, but it is caught
    later anyway: the server hashes the joined file and ingest checks it.
    """

    server: str
    target: tuple[tuple[str, str], ...]  # ("id", resource) or ("name", ...), ("package_id", ...)
    path: str
    size: int
    mtime_ns: int
    fingerprint: str

    @property
    def place(self) -> tuple[str, tuple[tuple[str, str], ...], str]:
        """Where the file goes and where it is, without what it contains."""
        return self.server, self.target, self.path


# -- pure key logic -------------------------------------------------------------------------

def state_dir(env: Mapping[str, str], home: Path) -> Path:
    """The directory of the state file, by ``MOSU_STATE_DIR``, then the XDG base directory spec
    (which ignores a relative ``XDG_STATE_HOME``), then its default ``~/.local/state``."""
    if env.get("MOSU_STATE_DIR"):
        return Path(env["MOSU_STATE_DIR"])
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "state"
    return base / "mosu"


def make_key(server: str, target: Mapping[str, str], path: Path, size: int, mtime_ns: int,
             fingerprint: str) -> UploadKey:
    """An :class:`UploadKey` with the server URL and target in one canonical spelling."""
    return UploadKey(server.rstrip("/"), tuple(sorted((str(k), str(v)) for k, v in target.items())),
                     str(path), size, mtime_ns, fingerprint)


def key_id(key: UploadKey) -> str:
    """A stable name for ``key`` in the file: the SHA-256 of its canonical JSON."""
    canonical = json.dumps(asdict(key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _entry_key(entry: Mapping[str, Any]) -> UploadKey | None:
    try:
        return UploadKey(str(entry["server"]), tuple((str(k), str(v)) for k, v in entry["target"]),
                         str(entry["path"]), int(entry["size"]), int(entry["mtime_ns"]), str(entry["fingerprint"]))
    except (KeyError, TypeError, ValueError):
        return None  # written by another version, or edited by hand: not ours to use


def find(state: State, key: UploadKey) -> str | None:
    """The upload id remembered for ``key``, if any."""
    entry = state.get("uploads", {}).get(key_id(key))
    return str(entry["upload_id"]) if isinstance(entry, dict) and entry.get("upload_id") else None


def superseded(state: State, key: UploadKey) -> dict[str, str]:
    """Entries (key id -> upload id) for the same file path and target whose file has changed
    since: their uploads can never be resumed, so the caller aborts and forgets them."""
    found = {}
    for kid, entry in state.get("uploads", {}).items():
        old = _entry_key(entry) if isinstance(entry, dict) else None
        if old is not None and old.place == key.place and old != key and entry.get("upload_id"):
            found[kid] = str(entry["upload_id"])
    return found


def remember(state: State, key: UploadKey, upload_id: str, started: str) -> State:
    """``state`` with ``key`` mapped to ``upload_id`` (a new dict; ``state`` is left alone)."""
    entry = {**asdict(key), "target": [list(pair) for pair in key.target], "upload_id": upload_id,
             "started": started}
    return {"format": FORMAT, "uploads": {**state.get("uploads", {}), key_id(key): entry}}


def forget(state: State, *key_ids: str) -> State:
    """``state`` without the entries ``key_ids`` (a new dict)."""
    return {"format": FORMAT, "uploads": {k: v for k, v in state.get("uploads", {}).items() if k not in key_ids}}


def parse(text: str) -> State:
    """The state in ``text``; anything unreadable counts as empty, since an entry is only a hint
    and refusing to push over a damaged state file would help nobody."""
    try:
        state = json.loads(text)
    except ValueError:
        return {"format": FORMAT, "uploads": {}}
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("uploads"), dict):
        return {"format": FORMAT, "uploads": {}}
    return state


# -- I/O at the edges -----------------------------------------------------------------------

def fingerprint(path: Path, size: int) -> str:
    """SHA-256 of the first and last MiB of the file (the whole file when it is smaller)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def file_key(server: str, target: Mapping[str, str], path: Path) -> UploadKey:
    """The :class:`UploadKey` of pushing ``path`` (made absolute) to ``target`` on ``server``."""
    path = path.resolve()
    st = path.stat()
    return make_key(server, target, path, st.st_size, st.st_mtime_ns, fingerprint(path, st.st_size))


def default_state_dir() -> Path:
    return state_dir(os.environ, Path.home())


class UploadState:
    """The state file in ``directory``; each change is read-modify-write under a lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILENAME

    def read(self) -> State:
        try:
            return parse(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return parse("")
        except OSError:
            return parse("")  # unreadable: resume nothing rather than refuse to push

    def get(self, key: UploadKey) -> str | None:
        return find(self.read(), key)

    def superseded(self, key: UploadKey) -> dict[str, str]:
        return superseded(self.read(), key)

    def put(self, key: UploadKey, upload_id: str) -> None:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._update(lambda state: remember(state, key, upload_id, started))

    def drop(self, *key_ids: str) -> None:
        self._update(lambda state: forget(state, *key_ids))

    def drop_key(self, key: UploadKey) -> None:
        self.drop(key_id(key))

    def _update(self, change: Callable[[State], State]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            self._write(change(self.read()))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on a side file (the state file itself is replaced, so it cannot hold one)."""
        if fcntl is None:
            yield
            return
        fd = os.open(self.directory / (FILENAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, state: State) -> None:
        """Write whole or not at all: a crash mid-write leaves the old file, never half a new one."""
        fd, tmp = tempfile.mkstemp(prefix=FILENAME + ".", suffix=".tmp", dir=self.directory)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh, indent=1, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
