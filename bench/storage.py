"""Object-storage transfer benchmark: the ingest worker's download, put and copy, old vs new.

Run: `.venv/bin/python bench/storage.py [--csv FILE] [--parquet FILE]`. It starts its own
SeaweedFS on free loopback ports, uploads the CSV (default /tmp/bench/data.csv, ~1 GB) as the
raw object, and measures, each variant twice and alternating (the machine is shared and noisy):
  download  old: minio ``fget_object`` (one stream);  new: ``ObjectStore.download`` (ranged GETs)
  put       old: ``fput_object`` with 16 MiB parts;   new: ``ObjectStore.put_file`` defaults
  copy      CopyObject of the ~200 MB Parquet, and the same copy as a multipart UploadPartCopy
`--sweep` also times other thread counts and sizes, to choose the defaults in catalog/storage/objects.py;
`--weed-memory 1GiB` runs SeaweedFS with a larger GOMEMLIMIT than `mosu up` gives it (256MiB).
Each downloaded file is checked against the source's SHA-256 of its first and last MiB and size.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.storage.objects import MIB, ObjectStore  # noqa: E402
from catalog.storage.seaweed import SeaweedServer  # noqa: E402


def fingerprint(path: Path) -> tuple[int, str]:
    """Size and a hash of the first and last MiB: enough to catch a misplaced or missing range."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(MIB)
        fh.seek(max(0, size - MIB))
        tail = fh.read(MIB)
    return size, hashlib.sha256(head + tail).hexdigest()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def report(label: str, size: int, seconds: list[float]) -> None:
    rates = ", ".join(f"{size / 1e6 / s:4.0f}" for s in seconds)
    print(f"  {label:<44} {rates} MB/s  (best {size / 1e6 / min(seconds):.0f})", flush=True)


def compare(title: str, size: int, variants: dict[str, Callable[[], object]], rounds: int = 2) -> None:
    """Run every variant ``rounds`` times, alternating, so drift in machine load hits all alike."""
    print(f"{title} ({size / 1e6:,.0f} MB):", flush=True)
    seconds: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(rounds):
        for label, fn in variants.items():
            seconds[label].append(timed(fn))
    for label, runs in seconds.items():
        report(label, size, runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=Path("/tmp/bench/data.csv"))
    ap.add_argument("--parquet", type=Path, default=Path("/tmp/bench/out.parquet"))
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    ap.add_argument("--sweep", action="store_true", help="also time other thread counts and sizes")
    ap.add_argument("--weed-memory", default="256MiB", help="GOMEMLIMIT of the SeaweedFS (as `mosu up` runs it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosu-bench-s3-", dir=args.workdir) as tmp, \
            SeaweedServer(Path(tmp) / "s3", memory_limit=args.weed_memory) as s3:
        work = Path(tmp)
        store = ObjectStore(s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, "bench")
        store.ensure_bucket()
        csv_size, pq_size = args.csv.stat().st_size, args.parquet.stat().st_size
        t = timed(lambda: store.put_file("raw", str(args.csv)))
        print(f"setup: raw object uploaded in {t:.1f} s ({csv_size / 1e6 / t:.0f} MB/s)", flush=True)
        expected = fingerprint(args.csv)
        out = work / "download"

        def checked(fn: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                fn()
                assert fingerprint(out) == expected, "downloaded file differs from the source"
                out.unlink()
            return run

        downloads = {
            "old fget_object (one stream)": checked(
                lambda: store.client.fget_object(store.bucket, "raw", str(out))),
            "new download (defaults)": checked(lambda: store.download("raw", str(out))),
        }
        if args.sweep:
            for threads, mib, read in ((1, 64, 1), (1, 64, 8), (2, 64, 1), (3, 64, 1), (4, 32, 1), (4, 64, 4),
                                       (6, 64, 1), (8, 32, 1)):
                downloads[f"download threads={threads} range={mib}M read={read}M"] = checked(
                    lambda t=threads, m=mib, r=read: store.download("raw", str(out), threads=t, range_size=m * MIB,
                                                                    read_size=r * MIB))
        compare("download of the raw CSV", csv_size, downloads)

        puts = {
            "old fput_object part=16M (minio: 3 threads)": lambda: store.client.fput_object(
                store.bucket, "pq-old", str(args.parquet), part_size=16 * MIB),
            "new put_file (defaults)": lambda: store.put_file("pq-new", str(args.parquet)),
        }
        if args.sweep:
            for part, threads in ((16, 1), (16, 4), (32, 2), (32, 4), (64, 1), (64, 3), (128, 2)):
                puts[f"put part={part}M threads={threads}"] = lambda p=part, n=threads: store.put_file(
                    "pq-sweep", str(args.parquet), part_size=p * MIB, threads=n)
        compare("put of the Parquet", pq_size, puts)

        copies = {
            "copy: CopyObject": lambda: store.copy("pq-new", "pq-copy"),
            "copy: multipart, 64M parts, 2 threads": lambda: store.copy(
                "pq-new", "pq-copy-mp", single_max=0, part_size=64 * MIB, threads=2),
        }
        if args.sweep:
            copies["copy: multipart, 1 part"] = lambda: store.copy("pq-new", "pq-copy-mp1", single_max=0)
            copies["copy: multipart, 32M parts, 4 threads"] = lambda: store.copy(
                "pq-new", "pq-copy-mp4", single_max=0, part_size=32 * MIB, threads=4)
        compare("server-side copy of the Parquet", pq_size, copies)
        for key in ("pq-copy", "pq-copy-mp"):
            assert store.size(key) == pq_size, key


if __name__ == "__main__":
    main()
