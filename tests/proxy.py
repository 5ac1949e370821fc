"""A real HTTP proxy on loopback that tests put between a Mosu process and a server it talks to.

It forwards every request byte for byte (the ``Host`` header too, so S3 signatures stay valid) and
records it; a test can make it answer chosen requests with an error status instead of forwarding them
(a 5xx from object storage), or hold them until released (a job deterministically in flight: a
worker's download of its raw upload waits here, with the job claimed and its lease renewed).

Two ways in: as the S3 endpoint of a process (``upstream`` given: requests name a path), or as its
``HTTP_PROXY`` (requests name an absolute URL).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import requests

_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade"}

Match = Callable[[str, str], bool]
"""(method, path or URL) -> whether a rule applies to the request."""


@dataclass
class Seen:
    method: str
    target: str  # the path (endpoint mode) or the absolute URL (HTTP_PROXY mode)
    status: int | None  # what the client got; None for a request held or still being forwarded


class Proxy:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream_url = upstream.rstrip("/") if upstream else None
        self.seen: list[Seen] = []
        self._failures: list[list] = []  # [match, status, times left]
        self._hold: Match | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.held = 0  # requests waiting in a hold right now
        self.upstream = requests.Session()
        self.upstream.trust_env = False  # straight to the servers, whatever this process's environment says
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self._body()
                seen = Seen(self.command, self.path, None)
                with proxy._lock:
                    proxy.seen.append(seen)
                    status = proxy._failure(self.command, self.path)
                if status is not None:
                    seen.status = status
                    self._answer(status, {"Content-Type": "text/plain"}, b"injected by the test proxy")
                    return
                proxy._wait_if_held(self.command, self.path)
                url = self.path if proxy.upstream_url is None else proxy.upstream_url + self.path
                resp = proxy.upstream.request(self.command, url, data=body, timeout=300, stream=True,
                                              headers={k: v for k, v in self.headers.items()
                                                       if k.lower() not in _HOP},
                                              allow_redirects=False)
                content = resp.raw.read(decode_content=False)
                seen.status = resp.status_code
                headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP | {"content-length"}}
                # a HEAD answer names the object's length without carrying it (S3's stat reads it)
                length = resp.headers.get("Content-Length", "0") if self.command == "HEAD" else str(len(content))
                self._answer(resp.status_code, {**headers, "Content-Length": length}, content)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, headers: dict[str, str], content: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="test-proxy").start()

    def fail(self, match: Match, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests that ``match`` with ``status``, without forwarding them."""
        with self._lock:
            self._failures.append([match, status, times])

    def _failure(self, method: str, target: str) -> int | None:
        for rule in self._failures:
            if rule[2] > 0 and rule[0](method, target):
                rule[2] -= 1
                return rule[1]
        return None

    def hold(self, match: Match) -> None:
        """Keep every request that ``match`` waiting (unanswered) until :meth:`release`."""
        self._released.clear()
        self._hold = match

    def release(self) -> None:
        self._hold = None
        self._released.set()

    def _wait_if_held(self, method: str, target: str) -> None:
        match = self._hold
        if match is None or not match(method, target):
            return
        with self._lock:
            self.held += 1
        try:
            self._released.wait(300)
        finally:
            with self._lock:
                self.held -= 1

    def wait_held(self, count: int, timeout: float = 90, alive: Callable[[], bool] | None = None) -> None:
        """Wait until ``count`` requests are held (a real asynchronous state, polled with a deadline),
        failing at once when ``alive()`` (the client process) turns false."""
        deadline = time.monotonic() + timeout
        while self.held < count:
            if time.monotonic() > deadline or (alive is not None and not alive()):
                raise AssertionError(f"{self.held} request(s) held, expected {count}")
            time.sleep(0.05)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
