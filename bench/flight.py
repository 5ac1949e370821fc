"""What one Arrow Flight hop costs (issue 16: "the Flight hop must be cheap: measure it alone").

Run: `.venv/bin/python bench/flight.py [--rows N] [--calls N]`. A table of the preview bench's
columns (`bench/preview.py`: integers, floats, a category, a timestamp, text) is built in memory
twice: in this process, and in a `pyarrow.flight` server started as a process of its own on
loopback (what a query node would be). Then, in the same run, p50/p95 of:
  (a) a page sliced from the local table and turned into rows (what the web process does today
      after DuckDB answers), and
  (b) the same page asked of the server (`do_get` with the offset and limit in the ticket),
      read as record batches over loopback gRPC and turned into rows,
for a 100-row first page, a 100-row page deep in the table and a 32,000-row answer (the row cap).
The difference is the hop: a query node would add it to every page and query.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.preview import pct  # noqa: E402


def make_table(rows: int) -> pa.Table:
    """The preview bench's columns, computed with Arrow (no DuckDB needed)."""
    i = pa.array(range(rows), pa.int64())
    quantity = pc.remainder(pc.multiply(i, 7919), 100_000)
    price = pc.divide(pc.cast(pc.remainder(pc.multiply(i, 104_729), 1_000_000), pa.float64()), 100.0)
    category = pc.binary_join_element_wise("category_", pc.cast(pc.remainder(i, 53), pa.string()), "")
    observed = pc.cast(pc.add(pc.multiply(i, 13), 1_420_070_400), pa.timestamp("s"))
    note = pc.binary_join_element_wise("record ", pc.cast(i, pa.string()), " near station ",
                                       pc.cast(pc.remainder(i, 997), pa.string()), "")
    return pa.table({"id": i, "quantity": quantity, "price": price, "category": category,
                     "observed_at": observed, "note": note})


class PageServer(flight.FlightServerBase):
    """Answers a ticket ``{"offset": o, "limit": n}`` with that slice of its table."""

    def __init__(self, location: str, rows: int) -> None:
        self.table = make_table(rows)  # before the server starts listening
        super().__init__(location)

    def do_get(self, context, ticket):  # noqa: ANN001 - pyarrow's signature
        ask = json.loads(ticket.ticket)
        return flight.RecordBatchStream(self.table.slice(ask["offset"], ask["limit"]))


def serve(port: int, rows: int) -> None:
    PageServer(f"grpc://127.0.0.1:{port}", rows).serve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, calls: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return pct(samples, 0.5), pct(samples, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, args.rows), daemon=True)
    server.start()
    local = make_table(args.rows)
    client = flight.connect(f"grpc://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while True:  # the server builds its table first
        try:
            client.do_get(flight.Ticket(json.dumps({"offset": 0, "limit": 1}).encode())).read_all()
            break
        except flight.FlightUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    print(f"Flight hop: {args.rows:,} rows held by a server process on loopback; {args.calls} calls each; ms")
    print(f"{'answer':34s} {'local p50':>9s} {'p95':>6s} {'Flight p50':>10s} {'p95':>6s} {'hop p50':>8s}")
    for label, offset, limit in (("first page (100 rows)", 0, 100),
                                 ("page at offset rows/2 (100 rows)", args.rows // 2, 100),
                                 ("32,000 rows (the row cap)", args.rows // 3, 32_000)):
        ticket = flight.Ticket(json.dumps({"offset": offset, "limit": limit}).encode())
        here = timed(lambda o=offset, n=limit: local.slice(o, n).to_pylist(), args.calls)
        there = timed(lambda t=ticket: client.do_get(t).read_all().to_pylist(), args.calls)
        print(f"{label:34s} {here[0]:9.2f} {here[1]:6.2f} {there[0]:10.2f} {there[1]:6.2f} "
              f"{there[0] - here[0]:8.2f}")
    client.close()
    server.terminate()
    server.join(10)


if __name__ == "__main__":
    main()
