"""Search benchmark: 100,000 synthetic datasets, 200 varied package_search calls over HTTP.

Run: `.venv/bin/python bench/search.py [--datasets 100000] [--queries 200]`.

1. Loads the datasets through the action functions (package_create, in process, on
   SQLite), timing the load.
2. Starts `mosu up` on that catalog and, after one warm-up call (which builds the
   index and is reported separately), times each package_search call over HTTP with
   `rows=20` and three facet fields (organization, tags, license_id).
3. In the same run, times the same queries against a bare search index in this
   process (no HTTP, no JSON, no permission lookups): the floor the HTTP figures
   are compared with.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.access.context import Actor, Context  # noqa: E402
from catalog.actions import call  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.platform import Platform  # noqa: E402
from catalog.search.index import SearchRequest, Visibility  # noqa: E402
from tests.conftest import start_mosu  # noqa: E402

SUBJECTS = """air quality water rainfall river flood drought soil forest land use crop yield livestock fishery
energy electricity solar wind coal gas emissions carbon climate temperature weather storm traffic road railway
bus tram airport port shipping freight population census birth death migration housing rent income poverty
employment wages unemployment education school university student teacher hospital health disease vaccine
clinic doctor nurse crime police court prison budget spending tax revenue procurement contract election vote
parliament library museum tourism hotel restaurant business company trade export import tariff inflation
price market stock bank loan mortgage insurance pension welfare child family elderly disability language
religion biodiversity species bird insect ocean coast glacier earthquake volcano satellite map boundary
address postcode building permit noise waste recycling sewage pollution nitrogen ozone particulate""".split()
PLACES = """Shanghai Beijing Shenzhen Guangzhou Chengdu Wuhan Hangzhou Nanjing Tianjin Chongqing Xian Suzhou
London Paris Berlin Madrid Rome Vienna Prague Warsaw Amsterdam Brussels Lisbon Dublin Oslo Stockholm
Helsinki Copenhagen Zurich Geneva Athens Istanbul Cairo Lagos Nairobi Johannesburg Mumbai Delhi Tokyo Osaka
Seoul Singapore Jakarta Manila Sydney Melbourne Auckland Toronto Montreal Vancouver Chicago Boston Denver
Seattle Austin Mexico Lima Bogota Santiago Buenos""".split()
KINDS = "statistics survey register indicators monitoring readings counts estimates records inventory".split()
FILLER = """the of and in for with by from per on at to annual monthly daily weekly quarterly regional national
local municipal district provincial federal total average median rate share index data dataset values
measured reported collected published updated revised preliminary final official open public historical
series table figures breakdown by age sex sector category station site area zone""".split()
LICENSES = ["cc-by", "cc-by-sa", "cc-zero", "odc-odbl", "odc-by", "odc-pddl", "other-pd", "other-open", "uk-ogl"]


def words(rng: random.Random, n: int) -> str:
    pool = SUBJECTS + FILLER * 3 + PLACES
    # Zipf-like: a few words are everywhere (broad queries hit most datasets), most are rare.
    return " ".join(pool[min(len(pool) - 1, int(rng.paretovariate(0.9)) - 1)] if rng.random() < 0.5
                    else rng.choice(pool) for _ in range(n))


def make_dataset(rng: random.Random, i: int, orgs: list[str]) -> dict:
    subject = " ".join(rng.sample(SUBJECTS, 2))
    place, year = rng.choice(PLACES), rng.randint(1990, 2026)
    title = f"{subject.title()} {rng.choice(KINDS)} {place} {year}"
    return {"name": f"ds-{i:06d}", "title": title, "owner_org": rng.choice(orgs),
            "notes": f"{title}. " + words(rng, 50), "license_id": rng.choice(LICENSES),
            "tags": [{"name": t} for t in {*rng.sample(SUBJECTS, 3), place.lower()}],
            "resources": [{"name": f"{subject} {year}", "url": f"https://example.org/{i}.csv",
                           "format": rng.choice(["CSV", "CSV", "JSON", "XLSX", "GeoJSON", "PDF"])}]}


def make_queries(rng: random.Random, n: int, orgs: list[str]) -> list[dict]:
    shapes = [
        lambda: {"q": rng.choice(SUBJECTS)},
        lambda: {"q": f"{rng.choice(SUBJECTS)} {rng.choice(PLACES)}"},
        lambda: {"q": rng.choice(FILLER)},  # broad: hits most datasets
        lambda: {"q": "*:*"},
        lambda: {"q": f'"{rng.choice(SUBJECTS)} {rng.choice(KINDS)}"'},
        lambda: {"q": f"tags:{rng.choice(SUBJECTS)}", "fq": f"organization:{rng.choice(orgs)}"},
        lambda: {"q": f"{rng.choice(SUBJECTS)} OR {rng.choice(SUBJECTS)}", "sort": "metadata_modified desc"},
        lambda: {"q": rng.choice(SUBJECTS), "fq": f"license_id:{rng.choice(LICENSES)}", "sort": "name asc"},
        lambda: {"q": f"{rng.choice(FILLER)} -{rng.choice(SUBJECTS)}", "fq": "res_format:CSV"},
        lambda: {"q": f"title:{rng.choice(PLACES).lower()}", "sort": "title_string asc"},
    ]
    facets = json.dumps(["organization", "tags", "license_id"])
    return [{**rng.choice(shapes)(), "rows": 20, "facet.field": facets} for _ in range(n)]


def load_part(job: tuple) -> None:
    """One loader process: every ``processes``-th dataset, through the action functions."""
    data_dir, total, processes, k, orgs = job
    platform = Platform.open(Settings(data_dir=Path(data_dir)))
    site = Context(platform=platform, actor=Actor.site())
    rng = random.Random(1000 + k)
    started = time.perf_counter()
    for n, i in enumerate(range(k, total, processes), 1):
        call(site, "package_create", make_dataset(rng, i, orgs))
        if k == 0 and n % 5000 == 0:
            print(f"  process 0: {n:,} datasets in {time.perf_counter() - started:.0f} s", flush=True)
    platform.close()


def pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--orgs", type=int, default=60)
    ap.add_argument("--processes", type=int, default=2, help="loader processes")
    args = ap.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="mosu-search-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        platform = Platform.open(Settings(data_dir=data_dir))
        site = Context(platform=platform, actor=Actor.site())
        orgs = [f"org-{i:02d}" for i in range(args.orgs)]
        for name in orgs:
            call(site, "organization_create", {"name": name, "title": f"Agency {name[-2:]} of {rng.choice(PLACES)}"})
        started = time.perf_counter()
        jobs = [(str(data_dir), args.datasets, args.processes, k, orgs) for k in range(args.processes)]
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            pool.map(load_part, jobs)
        load_s = time.perf_counter() - started
        print(f"load: {args.datasets:,} datasets through package_create in {load_s:.0f} s "
              f"({args.datasets / load_s:.0f}/s, {args.processes} processes, like `ckanapi load -p N`)")
        queries = make_queries(rng, args.queries, orgs)

        # The floor: the same queries on a bare index in this process.
        started = time.perf_counter()
        platform.search.refresh()
        print(f"index build from the catalog: {time.perf_counter() - started:.1f} s")
        index = platform.search.index
        bare = []
        for q in queries:
            req = SearchRequest(q=q["q"], fq=[q["fq"]] if "fq" in q else [], sort=q.get("sort"), rows=20,
                                facet_fields=["organization", "tags", "license_id"])
            t = time.perf_counter()
            index.search(req, Visibility())
            bare.append((time.perf_counter() - t) * 1000)
        platform.close()

        mosu = start_mosu(data_dir, {}, Settings(data_dir=data_dir), ("--workers", "0"))
        try:
            session = requests.Session()
            url = mosu.url + "/api/3/action/package_search"
            t = time.perf_counter()
            session.get(url, params={"q": "*:*", "rows": 1}).raise_for_status()
            print(f"first search after start (index build in the web process): {time.perf_counter() - t:.1f} s")
            http, counts = [], []
            for q in queries:
                t = time.perf_counter()
                body = session.get(url, params=q).json()
                http.append((time.perf_counter() - t) * 1000)
                assert body["success"], body
                counts.append(body["result"]["count"])
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{mosu.proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS")) / 1024
            print(f"web process RSS with the index loaded: {rss:.0f} MB")
        finally:
            mosu.stop()
    (h50, h95), (b50, b95) = pcts(http), pcts(bare)
    print(f"hits per query: median {statistics.median(counts):,.0f}, max {max(counts):,}")
    print(f"package_search over HTTP (rows=20, 3 facets): p50 {h50:.1f} ms  p95 {h95:.1f} ms  max {max(http):.1f} ms")
    print(f"bare index, same queries:                     p50 {b50:.1f} ms  p95 {b95:.1f} ms")


if __name__ == "__main__":
    main()
