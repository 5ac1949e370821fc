"""Grid benchmark: how long a page change of the web data grid takes to show, in a real browser.

Run: `.venv/bin/python bench/grid.py` (10 million rows) or, for a quick check, `--rows 200000`.
It starts its own SeaweedFS and `mosu up` on free loopback ports, publishes the 10M-row table of
`bench/preview.py` (same writer, same multipart upload), signs a researcher in through the form
in Debian's headless Chromium (launched as `tests/web.py` does) and opens the resource's grid.
Then, `--repeats` times each, alternating the arms call by call:
  next page, previous page, "Go to row" deep (row 9,000,001 at 10M), sort by clicking a numeric
  column's heading (asc/desc in turn), next page while sorted, a column filter (Enter in the
  category filter, a different value each time), full-text search (a different text each time),
  and, for comparison, the same deep page as a full page load (no script: what a link opened in
  a new tab costs).
What is timed is what the user sees, in the browser: from the input event (`event.timeStamp` of
the click or the Enter key, taken in a capture listener) until the new rows are in the table and
a frame has been painted (a MutationObserver on the table body, then requestAnimationFrame and a
task), whether the grid redraws in place or the page is loaded anew. Beside it, from the
Resource Timing API, the `datastore_search` request's server time (request sent to first byte;
loopback, so it is the server's) and what follows the response (JSON parse, DOM, paint).

`--baseline REF` serves `webui/static/grid.js` as it is at git REF to a second signed-in page
(a Playwright route, so the page loads it once and no request pays for it): before/after of a
script change in the same run, on the same server. Each arm gets its own filter and search
values, so neither finds the other's count cached.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import platform, publish  # noqa: E402
from bench.preview import CATEGORIES, ROW_GROUP, generate_parquet, pct  # noqa: E402
from tests.web import launch, new_user, signed_in_page  # noqa: E402

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # only the test extras install Playwright
    PlaywrightTimeout = TimeoutError  # type: ignore[misc,assignment]

GOAL_MS = 100.0
ROOT = Path(__file__).resolve().parents[1]

# Installed in every document of a measured page before its own scripts. t0: the input event's
# time; shown: a frame painted after the rows changed (or after a full load's first paint). Both
# absolute (timeOrigin + ...), so a full page load in between keeps t0 in sessionStorage.
PROBE = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const mark = (e) => {
    const ts = e.timeStamp > 0 && e.timeStamp <= performance.now() ? e.timeStamp : performance.now();
    window.__benchT0 = performance.timeOrigin + ts;
    sessionStorage.setItem("benchT0", String(window.__benchT0));
  };
  addEventListener("click", mark, true);
  addEventListener("keydown", (e) => { if (e.key === "Enter") mark(e); }, true);
  window.__benchShown = null;
  const painted = () => {
    window.__benchDrawn = now();
    requestAnimationFrame(() => setTimeout(() => { window.__benchShown = now(); }, 0));
  };
  document.addEventListener("DOMContentLoaded", () => {
    const rows = document.getElementById("grid-rows");
    if (rows) new MutationObserver(painted).observe(rows, { childList: true });
    const grid = document.getElementById("grid");  // grid.js marks a change done (count included)
    if (grid) new MutationObserver(() => { window.__benchSettled = now(); })
      .observe(grid, { attributes: true, attributeFilter: ["data-loaded"] });
    window.__benchLoaded = true;
    painted();
  });
})();
"""

READ = """() => {
  const api = performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/3/action/datastore_search"));
  const nav = performance.getEntriesByType("navigation")[0];
  const t0 = window.__benchT0 || Number(sessionStorage.getItem("benchT0")) || null;
  const rel = (abs) => abs - performance.timeOrigin;
  const timing = (e) => e && { start: e.startTime, requestStart: e.requestStart, responseStart: e.responseStart,
                               responseEnd: e.responseEnd };
  const error = document.getElementById("grid-error");
  return { t0: t0 && rel(t0), shown: window.__benchShown && rel(window.__benchShown),
           drawn: window.__benchDrawn && rel(window.__benchDrawn),
           settled: window.__benchSettled && rel(window.__benchSettled), navigated: !window.__benchArmed,
           api: api.map(timing), nav: timing(nav), rows: document.querySelectorAll("#grid-rows tr").length,
           error: error && !error.hidden ? error.textContent : null,
           range: (document.getElementById("grid-range") || {}).textContent };
}"""

ARM = """() => { performance.clearResourceTimings(); window.__benchT0 = null; window.__benchShown = null;
                 window.__benchSettled = null;
                 window.__benchArmed = true; sessionStorage.removeItem("benchT0"); }"""


@dataclass
class Sample:
    total: float
    server: float | None
    after: float | None  # from the response's last byte to the painted frame
    paint: float | None  # of which: from the rows in the DOM to the painted frame (style, layout, paint)
    requests: int
    navigated: bool
    script: float | None = None  # the renderer's script time in the change (Chrome's metrics; any task)
    layout: float | None = None  # and its style and layout time
    settled: float | None = None  # input event -> grid.js done (the total shown: after a count if it asked one)


@dataclass
class Figures:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Arm:
    """One signed-in page; ``name`` says which grid.js it runs."""

    def __init__(self, name: str, page: Any, url: str) -> None:
        self.name, self.page, self.url = name, page, url
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")

    def cpu(self) -> dict[str, float]:
        """The renderer's busy time so far in ms (Chrome's Performance.getMetrics: script, style + layout)."""
        got = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return {"script": got.get("ScriptDuration", 0) * 1000,
                "layout": (got.get("LayoutDuration", 0) + got.get("RecalcStyleDuration", 0)) * 1000}

    def open(self, query: str = "") -> None:
        """Load the grid (not timed) and wait until its script has taken over."""
        self.page.goto(self.url + query)
        self.page.wait_for_function("() => document.getElementById('grid').dataset.ready === 'true'")

    def measure(self, action: Callable[[Any], None], figures: Figures, want_rows: bool = True) -> None:
        page = self.page
        page.evaluate(ARM)
        before = self.cpu()
        action(page)
        page.wait_for_function(
            "() => window.__benchShown !== null && (window.__benchT0 || sessionStorage.getItem('benchT0'))",
            timeout=120_000, polling=5)
        # The next change starts once this one is done (a count asked for after the rows included),
        # so no change competes with the one before it for the server.
        page.wait_for_function("() => window.__benchSettled || !document.getElementById('grid-error').hidden",
                               timeout=120_000, polling=5)
        got = page.evaluate(READ)
        cpu = {k: v - before[k] for k, v in self.cpu().items()}
        if got["error"] or (want_rows and not got["rows"]):
            figures.errors.append(got["error"] or f"no rows ({got['range']})")
            return
        if got["navigated"]:  # a full page load: its own request is the navigation
            req = got["nav"]
            t0 = got["t0"]  # negative: before this document's time origin
        else:
            req = got["api"][0] if got["api"] else None
            t0 = got["t0"]
        server = req["responseStart"] - req["requestStart"] if req and req["requestStart"] else None
        after = got["shown"] - req["responseEnd"] if req else None
        figures.samples.append(Sample(got["shown"] - t0, server, after, got["shown"] - got["drawn"], len(got["api"]),
                                      got["navigated"], cpu["script"], cpu["layout"],
                                      max(got["settled"], got["shown"]) - t0))

    def load(self, query: str, figures: Figures) -> None:
        """A full page load of the grid at ``query``, timed from navigation start to the painted frame."""
        page = self.page
        page.goto(self.url + query, wait_until="domcontentloaded")
        page.wait_for_function("() => window.__benchShown !== null", timeout=120_000, polling=5)
        got = page.evaluate(READ)
        if got["error"] or not got["rows"]:
            figures.errors.append(got["error"] or f"no rows ({got['range']})")
            return
        nav = got["nav"]
        figures.samples.append(Sample(got["shown"], nav["responseStart"] - nav["requestStart"],
                                      got["shown"] - nav["responseEnd"], got["shown"] - got["drawn"], 0, True))


def click(locator_of: Callable[[Any], Any]) -> Callable[[Any], None]:
    return lambda page: locator_of(page).click()


def enter(locator_of: Callable[[Any], Any], text: str) -> Callable[[Any], None]:
    def act(page: Any) -> None:
        box = locator_of(page)
        box.fill(text)
        box.press("Enter")
    return act


def pager(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Pages of rows", exact=True).get_by_role("link", name=name, exact=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_cases(arms: list[Arm], rows: int, repeats: int) -> list[tuple[str, dict[str, Figures], str]]:
    deep = int(rows * 0.9)
    span = max(1, rows - deep - 100)  # deep rows asked for stay inside the table
    header(repeats)
    out: list[tuple[str, dict[str, Figures], str]] = []

    figs_of: dict[str, dict[str, Figures]] = {}

    def simple(label: str, setup: Callable[[Arm], None] | None, action: Callable[[int, int], Callable],
               want_rows: bool = True) -> None:
        figs = {a.name: Figures() for a in arms}
        figs_of[label] = figs
        for a in arms:
            if setup:
                setup(a)
        for i in range(repeats):
            for k, a in enumerate(arms):
                try:
                    a.measure(action(i, k), figs[a.name], want_rows)
                except PlaywrightTimeout as exc:  # noted, and the case goes on
                    figs[a.name].errors.append(f"no change shown: {str(exc).splitlines()[0]}")
        out.append((label, figs, loadavg()))
        print(f"  {label}: done (load average {out[-1][2]})", flush=True)
        rows_of(out[-1])

    n = len(arms)
    simple("next page", lambda a: a.open(), lambda i, k: click(lambda p: pager(p, "Next")))
    simple("previous page", None, lambda i, k: click(lambda p: pager(p, "Previous")))
    simple(f"go to row {deep + 1:,}", None, lambda i, k: enter(
        lambda p: p.get_by_label("Go to row"), str(deep + 1 + (i * n + k) * 1000 % span)))
    simple("sort: click 'price' heading", lambda a: a.open(),
           lambda i, k: click(lambda p: p.locator("th[data-field='price'] a.sort")))
    simple("next page, sorted price desc", lambda a: a.open("?sort=price+desc"),
           lambda i, k: click(lambda p: pager(p, "Next")))
    simple("filter category = value", lambda a: a.open(), lambda i, k: enter(
        lambda p: p.get_by_label("Filter category (exact value)"), f"category_{(1 + i * n + k) % CATEGORIES}"))
    simple("full-text search", lambda a: a.open(), lambda i, k: enter(
        lambda p: p.get_by_label("Search the text columns"), f"station {(i * n + k) * 7 % 997}"))
    # The no-script path, for comparison: the same deep page as a full page load.
    figs = {a.name: Figures() for a in arms}
    for i in range(repeats):
        for k, a in enumerate(arms):
            a.load(f"?offset={deep + (i * n + k) * 1000 % span}", figs[a.name])
    out.append((f"full page load, offset {deep:,}", figs, loadavg()))
    print(f"  full page load: done (load average {out[-1][2]})", flush=True)
    rows_of(out[-1])
    return out


def fmt(values: list[float]) -> str:
    return f"{pct(values, 0.5):7.1f} {pct(values, 0.95):7.1f}" if values else f"{'-':>7s} {'-':>7s}"


def med(values: Any) -> str:
    got = [v for v in values if v is not None]
    return f"{pct(got, 0.5):.1f}" if got else "-"


def report(results: list[tuple[str, dict[str, Figures], str]], repeats: int) -> None:
    header(repeats)
    for result in results:
        rows_of(result)


def header(repeats: int) -> None:
    print(f"\nms over {repeats} repeats. total: input event -> new rows painted; server: the datastore_search "
          "request's\nrequest sent -> first byte (Resource Timing); after: response end -> painted; paint: rows in "
          "the DOM ->\npainted (the part of 'after' that is style, layout, paint and the wait for a frame); JS, "
          "layout: the\nrenderer's CPU in script and in style + layout during the change (Chrome's Performance "
          "metrics); done: input -> the\nchange finished with its total shown (after the count, if one was asked "
          f"for); req: datastore_search calls. Goal: total p95 <= {GOAL_MS:.0f} ms.")
    print(f"{'case':34s} {'arm':9s} {'total p50':>9s} {'p95':>7s} {'server p50':>10s} {'p95':>7s} "
          f"{'after p50':>9s} {'p95':>7s} {'paint p50':>9s} {'p95':>7s} {'JS p50':>6s} {'layout p50':>10s} "
          f"{'done p50':>8s} {'req':>4s}  goal  (load avg)")


def rows_of(result: tuple[str, dict[str, Figures], str]) -> None:
    """The report's lines of one case (also printed as soon as the case is done)."""
    label, figs, load = result
    for arm, f in figs.items():
        s = f.samples
        if not s:
            print(f"{label:34s} {arm:9s} no sample: {'; '.join(sorted(set(f.errors)))[:120]}")
            continue
        total = [x.total for x in s]
        server = [x.server for x in s if x.server is not None]
        after = [x.after for x in s if x.after is not None]
        paint = [x.paint for x in s if x.paint is not None]
        reqs = max(x.requests for x in s)
        how = " full load" if all(x.navigated for x in s) else ""
        goal = "met" if pct(total, 0.95) <= GOAL_MS else "MISSED"
        print(f"{label:34s} {arm:9s} {fmt(total):>17s} {fmt(server):>18s} {fmt(after):>17s} {fmt(paint):>17s} "
              f"{med(x.script for x in s):>6s} {med(x.layout for x in s):>10s} "
              f"{med(x.settled for x in s):>8s} {reqs:4d}  {goal:6s}({load}){how}")
        if f.errors:
            print(f"{'':34s} {len(f.errors)} errors: {'; '.join(sorted(set(f.errors)))[:150]}")


def serve(script: str) -> Callable[[Any], None]:
    """A route handler that answers with ``script`` (Playwright calls it with the route and the request)."""
    return lambda route, *_: route.fulfill(status=200, body=script, content_type="text/javascript; charset=utf-8")


def baseline_script(ref: str) -> str:
    return subprocess.run(["git", "show", f"{ref}:webui/static/grid.js"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--warm-seconds", type=float, default=20.0,
                    help="wait after warming, for the sort orders' background build (default 20)")
    ap.add_argument("--repeats", type=int, default=20, help="page changes of each kind (default 20)")
    ap.add_argument("--baseline", metavar="REF", default=None,
                    help="also time a page running webui/static/grid.js as at git REF (e.g. main)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    args = ap.parse_args()
    print(f"load average at start: {loadavg()} ({os.cpu_count()} cores)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mosu-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        local = work / "data.parquet"
        t = time.perf_counter()
        generate_parquet(local, args.rows)
        size = local.stat().st_size
        print(f"Parquet: {args.rows:,} rows, {size / 1e6:,.0f} MB, {ROW_GROUP:,}-row groups "
              f"(written in {time.perf_counter() - t:.1f} s)")
        with platform(work) as bench, sync_playwright() as pw:
            res, uploaded, published = publish(bench, local)
            print(f"    upload (multipart) {uploaded:.2f} s; upload complete -> published {published:.2f} s; "
                  f"load average {loadavg()}")
            researcher = new_user(bench.mosu, "researcher")
            url = f"{bench.mosu.url}/dataset/{bench.package['name']}/resource/{res['id']}"
            browser = launch(pw)
            try:
                arms = []
                scripts = {"current": None}
                if args.baseline:
                    scripts[args.baseline] = baseline_script(args.baseline)
                for name, script in scripts.items():
                    page = signed_in_page(browser, bench.mosu, researcher)
                    page.context.add_init_script(PROBE)
                    if script is not None:
                        page.context.route("**/static/grid.js*", serve(script))
                    arms.append(Arm(name, page, url))
                for a in arms:  # warm: the first sort and the first filter build the server's caches
                    a.open("?sort=price+desc&f.category=category_0")
                    a.open("?sort=price")
                    a.open("?sort=price+desc")
                # A column's first sort (either direction) is sorted in SQL and starts its row order's
                # build in the background (seconds at 10M rows): what is timed below is the steady state.
                time.sleep(args.warm_seconds)
                print(f"grid of {args.rows:,} rows at {url}; arms: {', '.join(a.name for a in arms)}")
                results = run_cases(arms, args.rows, args.repeats)
                for a in arms:
                    if a.page.console_errors:
                        print(f"console errors ({a.name}): {a.page.console_errors[:3]}")
            finally:
                browser.close()
            report(results, args.repeats)
            print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
