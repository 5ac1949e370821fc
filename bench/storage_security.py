"""What closing SeaweedFS's internal ports costs: start-up, stop, put and download, open vs secured.

Run: `.venv/bin/python bench/storage_security.py [--size-mib N] [--starts N]`. It alternates an
embedded SeaweedFS as `mosu up` ran it before (no security configuration, internal ports open to
anyone on the machine) with the one it runs now (mutual TLS on the filer, master, volume and gRPC
ports, JWT keys; see catalog/storage/seaweed_security.py), each on its own free loopback ports:
  start   seconds from launch until the S3 port answers 403 (plus, when secured, the probe of the
          internal ports and generating the keys and certificates)
  stop    seconds from SIGTERM until the process exited
  put     ``ObjectStore.put_file`` of a random file (multipart, defaults)
  get     ``ObjectStore.download`` of it (ranged GETs, defaults), checked byte for byte
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.storage.objects import MIB, ObjectStore  # noqa: E402
from catalog.storage.seaweed import SeaweedServer  # noqa: E402


class OpenSeaweed(SeaweedServer):
    """The store as it ran before: an empty security configuration, nothing refused."""

    def write_security_config(self, store_dir: Path) -> Path:
        empty = store_dir / "no-security"
        empty.mkdir(exist_ok=True)
        (empty / "security.toml").write_text("")
        return empty

    def refuse_open_internal_ports(self) -> None:
        pass


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="size of the file put and downloaded")
    ap.add_argument("--starts", type=int, default=5, help="start/stop cycles per variant")
    ap.add_argument("--rounds", type=int, default=3, help="put/get rounds per variant")
    args = ap.parse_args()
    variants = {"open (before)": OpenSeaweed, "secured (now)": SeaweedServer}
    with tempfile.TemporaryDirectory(prefix="mosu-bench-sec-") as tmp:
        work = Path(tmp)
        src = work / "payload"
        with open(src, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(MIB))
        expected = digest(src)
        starts: dict[str, list[float]] = {v: [] for v in variants}
        stops: dict[str, list[float]] = {v: [] for v in variants}
        puts: dict[str, list[float]] = {v: [] for v in variants}
        gets: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(max(args.starts, args.rounds)):
            for label, cls in variants.items():
                server = cls(work / f"{label.split()[0]}-{i}")
                t = time.perf_counter()
                server.start()
                starts[label].append(time.perf_counter() - t)
                if i < args.rounds:
                    store = ObjectStore(server.endpoint, server.credentials.access_key,
                                        server.credentials.secret_key, "bench")
                    store.ensure_bucket()
                    t = time.perf_counter()
                    store.put_file("payload", str(src))
                    puts[label].append(time.perf_counter() - t)
                    out = work / "download"
                    t = time.perf_counter()
                    store.download("payload", str(out))
                    gets[label].append(time.perf_counter() - t)
                    assert digest(out) == expected, "download differs from the source"
                    out.unlink()
                t = time.perf_counter()
                server.stop()
                stops[label].append(time.perf_counter() - t)
        size_mb = args.size_mib * MIB / 1e6
        for label in variants:
            print(f"{label}:")
            print(f"  start  median {statistics.median(starts[label]):.2f} s  "
                  f"({', '.join(f'{s:.2f}' for s in starts[label])})")
            print(f"  stop   median {statistics.median(stops[label]):.2f} s  "
                  f"({', '.join(f'{s:.2f}' for s in stops[label])})")
            for name, runs in (("put", puts[label]), ("get", gets[label])):
                rates = ", ".join(f"{size_mb / s:.0f}" for s in runs)
                print(f"  {name}    best {size_mb / min(runs):.0f} MB/s  ({rates})")
        for name, runs in (("put", puts), ("get", gets)):
            ratio = min(runs["open (before)"]) / min(runs["secured (now)"])
            print(f"{name} speed secured / open (best of each): {ratio:.2f}")


if __name__ == "__main__":
    main()
