"""Child processes of ``mosu up``: ingest workers, restarted if one dies, all stopped on exit."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

log = logging.getLogger("mosu.supervisor")
WORKER_COMMAND = [sys.executable, "-m", "catalog.cli", "worker", "--exit-with-parent"]


class WorkerProcesses:
    """``count`` worker processes with ``env``; a watcher thread replaces any that exits."""

    def __init__(self, count: int, env: dict[str, str], check_seconds: float = 2.0) -> None:
        self.count, self.env, self.check_seconds = count, env, check_seconds
        self.procs: list[subprocess.Popen] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> "WorkerProcesses":
        self.procs = [self._spawn() for _ in range(self.count)]
        if self.count:
            self._watcher = threading.Thread(target=self._watch, daemon=True, name="worker-watch")
            self._watcher.start()
        return self

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(WORKER_COMMAND, env=self.env)

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_seconds):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("ingest worker %d exited with %s; starting a new one", proc.pid, proc.returncode)
                    self.procs[i] = self._spawn()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every worker (they finish or abandon the current job), SIGKILL stragglers."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
