"""Counting failures per client address, to slow a burst of bad API tokens (defence in depth).

Tokens are 256-bit random, so guessing one is hopeless anyway; the counter only makes a burst
of guesses cheap to refuse (429) and visible. It lives in each web process's memory, bounded to
``max_keys`` addresses (the least recently failing are forgotten first): with several web
processes each counts on its own, which weakens a limit that was never the real protection and
costs no database write per bad request. The address is the TCP peer (waitress serves clients
directly); behind a reverse proxy every client would share the proxy's address, and a
trusted-proxy setting (reading ``X-Forwarded-For`` only from that proxy) would be needed.
"""
from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from typing import Callable


def client_key(address: str | None) -> str:
    """The unit a limit applies to: an IPv4 address, or an IPv6 /64 (one host usually holds a
    whole /64, so counting single IPv6 addresses would let it change address at will)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureCounter:
    """Failures per key in fixed windows of ``window`` seconds; past ``limit`` the key waits."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (window start, failures)
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds ``key`` must wait before it is heard again; 0 when it may go on."""
        if self.limit <= 0:
            return 0
        with self._lock:
            start, count = self._counts.get(key, (0.0, 0))
            left = start + self.window - self.clock()
            return max(1, math.ceil(left)) if count >= self.limit and left > 0 else 0

    def fail(self, key: str) -> None:
        """Count one failure of ``key``."""
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            start, count = self._counts.pop(key, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            self._counts[key] = (start, count + 1)
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
