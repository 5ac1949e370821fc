"""Sorted pages of ``datastore_search`` taken from a kept row order (issue 16, "Repeated work made cheap").

One published version (Parquet uploaded and ingested for real: SQLite, SeaweedFS, the worker,
DuckDB) with ints, floats (NaN too), text, timestamps, duplicates and nulls. For every column and
direction, pages at several offsets equal an oracle computed here with Python's ``sorted``:
nulls last in both directions, NaN above every number (as DuckDB ranks it), and rows with equal
keys in file order (ascending ``_id``) in both directions. The same pages through the SQL path
(a second sort key, ``_id``, keeps a search off the row order) are the same records and field types.
"""
from __future__ import annotations

import datetime as dt
import functools
import io
import math
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.db.models import AccessGrant, ResourceVersion, utcnow
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import restricted_dataset, s3_settings

ROWS = 300
PAGE = 37
OFFSETS = (0, 37, 150, 270, 299, 400)


def _column_values() -> dict[str, list]:
    rng = random.Random(16)

    def maybe_null(value, every: int = 9):
        return None if rng.randrange(every) == 0 else value

    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return {
        "n": [maybe_null(rng.randrange(-20, 20)) for _ in range(ROWS)],  # many duplicates
        "x": [maybe_null(rng.choice([math.nan, -0.5, 0.0, 2.25, rng.uniform(-1e3, 1e3)])) for _ in range(ROWS)],
        "word": [maybe_null(rng.choice(["beta", "Alpha", "alpha", "", "é", "zeta", f"w{rng.randrange(50)}"]))
                 for _ in range(ROWS)],
        "at": [maybe_null(base + dt.timedelta(hours=rng.randrange(40))) for _ in range(ROWS)],
        "secret": [f"secret-{i}" for i in range(ROWS)],
    }


VALUES = _column_values()
SORTED = ("n", "x", "word", "at")


def _parquet() -> bytes:
    table = pa.table({"n": pa.array(VALUES["n"], pa.int64()), "x": pa.array(VALUES["x"], pa.float64()),
                      "word": pa.array(VALUES["word"], pa.string()),
                      "at": pa.array(VALUES["at"], pa.timestamp("us", tz="UTC")),
                      "secret": pa.array(VALUES["secret"], pa.string())})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=64)  # several chunks in the cached table
    return out.getvalue()


def _compare(a, b) -> int:
    """DuckDB's order of two non-null values: NaN above every number and equal to itself."""
    a_nan, b_nan = isinstance(a, float) and math.isnan(a), isinstance(b, float) and math.isnan(b)
    if a_nan or b_nan:
        return int(a_nan) - int(b_nan)
    if isinstance(a, str):  # text compares by its UTF-8 bytes
        a, b = a.encode(), b.encode()
    return (a > b) - (a < b)


def oracle(column: str, descending: bool) -> list[int]:
    """The ``_id``s in ``ORDER BY column ASC|DESC NULLS LAST, _id`` order, by Python's ``sorted``."""
    ids = list(range(1, ROWS + 1))
    present = [i for i in ids if VALUES[column][i - 1] is not None]
    nulls = [i for i in ids if VALUES[column][i - 1] is None]
    sign = -1 if descending else 1

    def cmp(i: int, j: int) -> int:
        return sign * _compare(VALUES[column][i - 1], VALUES[column][j - 1]) or (i > j) - (i < j)
    return sorted(present, key=functools.cmp_to_key(cmp)) + nulls


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    # query_cache_bytes=1: each table built evicts every other one (the eviction test relies on it)
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("sorted") / "data", query_cache_bytes=1))
    platform.store.ensure_bucket()
    owner, users, pkg = restricted_dataset(platform, "sp")
    rids = [call(owner, "resource_create", {"package_id": pkg["id"], "name": name, "upload": Upload(
        io.BytesIO(body), f"{name}.parquet", "application/octet-stream")})["id"]
        for name, body in (("table", _parquet()), ("other", b"a,b\n1,2\n3,4\n"))]
    while Worker(platform).run_once():
        pass
    for rid in rids:
        assert call(owner, "resource_show", {"id": rid})["ingest_status"] == "ready"
    with platform.write.begin() as s:
        s.add(AccessGrant(package_id=pkg["id"], grantee_type="user", grantee_id=users["scoped"].id,
                          expires=utcnow() + dt.timedelta(days=90), columns=["n", "word"],
                          approved_by=users["owner"].id))
        key = s.scalars(select(ResourceVersion.parquet_key).where(ResourceVersion.resource_id == rids[0])).one()
    scoped = Context(platform=platform, actor=Actor.of(users["scoped"]), client="sp-scoped")
    # every row in file order through the plain path: what each sorted page is made of
    rows = call(owner, "datastore_search", {"resource_id": rids[0], "limit": ROWS + 1})
    assert [r["_id"] for r in rows["records"]] == list(range(1, ROWS + 1))
    assert call(owner, "datastore_search", {"resource_id": rids[0], "sort": "secret", "limit": 1})["records"]
    assert platform.query.tables.ready(key)  # the SQL path built the cached table
    yield {"platform": platform, "owner": owner, "scoped": scoped, "rid": rids[0], "other": rids[1], "key": key,
           "by_id": {r["_id"]: r for r in rows["records"]}}
    platform.close()


def search(ctx: Context, rid: str, **params) -> dict:
    return call(ctx, "datastore_search", {"resource_id": rid, **params})


def test_the_data_has_what_the_orders_must_handle():
    for column in SORTED:
        present = [v for v in VALUES[column] if v is not None]
        assert len(present) < ROWS and len(set(map(repr, present))) < len(present), column  # nulls, duplicates
    assert any(isinstance(v, float) and math.isnan(v) for v in VALUES["x"])


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("column", SORTED)
def test_pages_follow_the_oracle_and_the_sql_path(world, column, descending):
    owner, rid, orders = world["owner"], world["rid"], world["platform"].query.orders
    sort = f"{column} desc" if descending else column
    expected = oracle(column, descending)
    search(owner, rid, sort="_id, n", limit=1)  # two keys: SQL, which caches the table another test may evict
    builds, kept = orders.builds, orders.kept(world["key"], column, descending)  # another test's sort, maybe
    for offset in OFFSETS:
        hits = orders.hits
        page = search(owner, rid, sort=sort, limit=PAGE, offset=offset)
        # the first page starts the order's build and is sorted in SQL; every later one is taken from it
        assert orders.hits == hits + (kept or offset != OFFSETS[0]), (sort, offset)
        orders.settle()
        assert [r["_id"] for r in page["records"]] == expected[offset:offset + PAGE], (sort, offset)
        assert page["records"] == [world["by_id"][i] for i in expected[offset:offset + PAGE]]
        assert page["total"] == ROWS
        # the SQL path (two sort keys keep a search off the row order) answers the same, typed the same
        queried = search(owner, rid, sort=f"{sort}, _id", limit=PAGE, offset=offset)
        assert queried["records"] == page["records"] and queried["fields"] == page["fields"], (sort, offset)
        for fmt in ("lists", "csv"):
            assert search(owner, rid, sort=sort, limit=PAGE, offset=offset, records_format=fmt)["records"] == \
                search(owner, rid, sort=f"{sort}, _id", limit=PAGE, offset=offset, records_format=fmt)["records"]
    assert orders.builds == builds + (not kept), "one order built for the column and direction, then reused"


def test_a_repeated_request_answers_as_the_first(world):
    owner, rid, orders = world["owner"], world["rid"], world["platform"].query.orders
    builds = orders.builds
    first = search(owner, rid, sort="word desc", fields="word,_id,n", limit=20, offset=13)
    orders.settle()
    again = search(owner, rid, sort="word desc", fields="word,_id,n", limit=20, offset=13)
    assert first == again and list(first["records"][0]) == ["word", "_id", "n"]
    assert [r["_id"] for r in first["records"]] == oracle("word", True)[13:33]
    assert orders.builds <= builds + 1


def test_a_column_scoped_reader_gets_only_their_columns(world):
    scoped, rid = world["scoped"], world["rid"]
    for sort in ("n", "word desc"):
        page = search(scoped, rid, sort=sort, limit=PAGE, offset=40)
        assert [f["id"] for f in page["fields"]] == ["_id", "n", "word"]
        column, descending = sort.split()[0], sort.endswith("desc")
        assert [r["_id"] for r in page["records"]] == oracle(column, descending)[40:40 + PAGE]
        assert page["records"] == [{k: world["by_id"][r["_id"]][k] for k in ("_id", "n", "word")}
                                   for r in page["records"]]
        assert "secret" not in repr(page)


def test_an_evicted_table_and_its_orders_still_answer(world):
    platform, owner, rid, key = world["platform"], world["owner"], world["rid"], world["key"]
    orders = platform.query.orders
    expected = oracle("x", True)[100:100 + PAGE]
    assert [r["_id"] for r in search(owner, rid, sort="x desc", limit=PAGE, offset=100)["records"]] == expected
    orders.settle()
    assert any(k[0] == key for k in orders._orders)
    search(owner, world["other"], sort="a")  # building the other table evicts this one (1-byte cache)
    assert not platform.query.tables.ready(key)
    assert not any(k[0] == key for k in orders._orders), "the orders went with their table"
    builds = orders.builds
    for _ in range(2):  # the first through SQL (it builds the table again), the next from a new order
        page = search(owner, rid, sort="x desc", limit=PAGE, offset=100)
        assert [r["_id"] for r in page["records"]] == expected
        orders.settle()
    assert orders.builds == builds + 1


# Filters with a sort: the filter mask taken in the row order (issue 16). Each case: the filters
# as sent, and the values each column must hold for a row to be kept (the oracle's view of them).
FILTERED = {
    "one-int": ({"n": 3}, {"n": {3}}),
    "int-list-with-null": ({"n": [1, 2, -5, None]}, {"n": {1, 2, -5}}),
    "int-as-text": ({"n": "7"}, {"n": {7}}),
    "one-text": ({"word": "alpha"}, {"word": {"alpha"}}),
    "text-list": ({"word": ["beta", "é", ""]}, {"word": {"beta", "é", ""}}),
    "two-columns": ({"n": [1, 2, 3, 4, 5, 6, -1, -2], "word": ["beta", "zeta", "Alpha"]},
                    {"n": {1, 2, 3, 4, 5, 6, -1, -2}, "word": {"beta", "zeta", "Alpha"}}),
    "float": ({"x": [2.25, -0.5]}, {"x": {2.25, -0.5}}),
    "nothing": ({"n": 999}, {"n": {999}}),
}


def filtered_oracle(column: str, descending: bool, wanted: dict[str, set]) -> list[int]:
    return [i for i in oracle(column, descending)
            if all(VALUES[c][i - 1] is not None and VALUES[c][i - 1] in values for c, values in wanted.items())]


@pytest.mark.parametrize("case", sorted(FILTERED))
@pytest.mark.parametrize("sort", ["n", "x desc", "word desc", "at"])
def test_filtered_pages_follow_the_oracle_and_the_sql_path(world, sort, case):
    owner, rid, orders = world["owner"], world["rid"], world["platform"].query.orders
    filters, wanted = FILTERED[case]
    column, descending = sort.split()[0], sort.endswith("desc")
    search(owner, rid, sort="_id, n", limit=1)  # SQL: (re)builds the cached table another test may evict
    search(owner, rid, sort=sort, limit=1)  # starts the order's build, if it is not kept
    orders.settle()
    assert orders.kept(world["key"], column, descending)
    expected = filtered_oracle(column, descending, wanted)
    assert case == "nothing" or len(expected) > 3, "the case keeps some rows"
    for n, offset in enumerate((0, 3, 40)):
        hits, kept_hits = orders.hits, orders.selection_hits
        page = search(owner, rid, sort=sort, filters=filters, limit=PAGE, offset=offset)
        assert orders.hits == hits + 1, "taken from the kept order"
        # the first page keeps the filters' positions in the order; the next ones slice them
        assert orders.selection_hits == kept_hits + (n > 0), (sort, case, offset)
        assert [r["_id"] for r in page["records"]] == expected[offset:offset + PAGE], (sort, case, offset)
        assert page["records"] == [world["by_id"][i] for i in expected[offset:offset + PAGE]]
        assert page["total"] == len(expected)
        queried = search(owner, rid, sort=f"{sort}, _id", filters=filters, limit=PAGE, offset=offset)
        assert queried["records"] == page["records"] and queried["fields"] == page["fields"], (sort, case)
        assert queried["total"] == page["total"]
        assert search(owner, rid, sort=sort, filters=filters, limit=PAGE, offset=offset,
                      include_total=False)["records"] == page["records"]


@pytest.mark.parametrize("filters", [{"x": 0.0}, {"x": "NaN"}, {"at": "2024-01-01 05:00:00+00"}],
                         ids=["float-zero", "nan", "timestamp"])
def test_filters_arrow_might_compare_otherwise_are_answered_in_sql(world, filters):
    owner, rid, orders = world["owner"], world["rid"], world["platform"].query.orders
    search(owner, rid, sort="_id, n", limit=1)
    search(owner, rid, sort="n desc", limit=1)
    orders.settle()
    hits = orders.hits
    page = search(owner, rid, sort="n desc", filters=filters, limit=PAGE)
    assert orders.hits == hits, "not taken from the order"
    queried = search(owner, rid, sort="n desc, _id", filters=filters, limit=PAGE)
    assert page["records"] == queried["records"] and page["total"] == queried["total"] > 0


def test_a_filter_value_of_the_wrong_type_is_refused_as_in_sql(world):
    owner, rid, orders = world["owner"], world["rid"], world["platform"].query.orders
    search(owner, rid, sort="_id, n", limit=1)
    search(owner, rid, sort="n", limit=1)
    orders.settle()
    errors = []
    for sort in ("n", "n, _id"):
        with pytest.raises(Exception) as caught:
            search(owner, rid, sort=sort, filters={"n": "seven"})
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def test_a_column_scoped_reader_filters_within_their_columns(world):
    scoped, rid, orders = world["scoped"], world["rid"], world["platform"].query.orders
    search(world["owner"], rid, sort="_id, n", limit=1)
    search(scoped, rid, sort="n desc", limit=1)
    orders.settle()
    filters = {"word": ["beta", "alpha", "zeta"]}
    expected = filtered_oracle("n", True, {"word": {"beta", "alpha", "zeta"}})
    hits = orders.hits
    page = search(scoped, rid, sort="n desc", filters=filters, limit=PAGE, offset=2)
    assert orders.hits == hits + 1
    assert [f["id"] for f in page["fields"]] == ["_id", "n", "word"]
    assert [r["_id"] for r in page["records"]] == expected[2:2 + PAGE] and page["total"] == len(expected)
    assert page["records"] == [{k: world["by_id"][i][k] for k in ("_id", "n", "word")} for i in expected[2:2 + PAGE]]
    assert "secret" not in repr(page)
    queried = search(scoped, rid, sort="n desc, _id", filters=filters, limit=PAGE, offset=2)
    assert queried["records"] == page["records"] and queried["fields"] == page["fields"]
    with pytest.raises(Exception, match="secret"):
        search(scoped, rid, sort="n desc", filters={"secret": "secret-1"})
