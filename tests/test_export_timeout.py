"""``MOSU_EXPORT_TIMEOUT_SECONDS``: "a streamed export is stopped after this long, streaming
included". The server's limit is 1 s and the queries could not finish in days (10**15 rows), so
what is asserted never depends on how fast the machine is: the error, where it comes, and that the
stopped export gave its query slot back."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import RunningMosu

STOPPED = "The export was stopped after its time limit of 1 s"
ENDLESS = 10**15  # rows: DuckDB computes a few billion a second, so days for the sum, years for the CSV


@pytest.fixture(scope="module")
def slow_site(mosu_factory) -> RunningMosu:
    """Exports stopped after 1 s; the computation of one batch may take 20 s (so it is the export's
    limit, not the query's, that stops them); one query or export at a time per caller."""
    return mosu_factory("--workers", "0", export_timeout_seconds=1.0, query_timeout_seconds=20.0,
                        query_max_concurrent_per_caller=1)


def _dump_sql(site: RunningMosu, sql: str, **kwargs) -> requests.Response:
    return requests.get(f"{site.url}/datastore/dump_sql", params={"sql": sql, "format": "csv"}, timeout=60,
                        **kwargs)


def test_an_export_streaming_past_its_time_limit_ends_unfinished(slow_site):
    """Rows come at once, so the answer starts (200, CSV); past 1 s the download ends without its
    final chunk (never a file that looks whole), the server logs why, and the slot is free again."""
    resp = _dump_sql(slow_site, f"SELECT i FROM range({ENDLESS}) t(i)", stream=True)
    head, received = b"", 0
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with resp:
            assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
            deadline = time.monotonic() + 30  # a guard: the stop comes after about 1 s
            for chunk in resp.iter_content(1 << 16):
                head, received = head or chunk, received + len(chunk)
                assert time.monotonic() < deadline, "the export was never stopped"
    assert head.startswith(b"i\r\n0\r\n1\r\n2\r\n") and 0 < received
    deadline = time.monotonic() + 10
    while f"stopped after the headers: {STOPPED}" not in (log := slow_site.log.read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.05)
    assert _dump_sql(slow_site, "SELECT 42 AS answer").text == "answer\r\n42\r\n", "its query slot was given back"


def test_an_export_whose_first_rows_come_after_its_time_limit_is_a_400(slow_site):
    """The first rows are computed before the answer starts: an export stopped there is CKAN's JSON
    error (400) naming the export's limit, not the query's."""
    resp = _dump_sql(slow_site, f"SELECT sum(i * i) AS s FROM range({ENDLESS}) t(i)")
    assert resp.status_code == 400
    assert resp.json()["error"] == {"__type": "Validation Error", "message": STOPPED}
    assert _dump_sql(slow_site, "SELECT 42 AS answer").text == "answer\r\n42\r\n", "its query slot was given back"
