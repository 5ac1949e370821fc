"""Take the README's screenshots of the main pages from a fresh ``mosu up --demo``.

    .venv/bin/python docs/screenshots.py        # writes docs/screenshots/*.png

Starts its own platform in a temporary directory on a free loopback port (with its own SeaweedFS),
signs in as the demo accounts it creates, makes a few reads so the compliance dashboard has
something to show, and stops everything afterwards. Debian's Chromium, through Playwright.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEMO = ("iowa-electricity", "seattle-weather", "us-employment")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            names = requests.get(f"{url}/api/3/action/package_list", timeout=5).json()["result"]
            if sorted(names) == sorted(DEMO):
                ready = [requests.get(f"{url}/api/3/action/package_show", params={"id": n}, timeout=5)
                         .json()["result"]["resources"][0].get("datastore_active") for n in DEMO]
                if all(ready):
                    return
        except (requests.RequestException, KeyError, IndexError):
            pass
        time.sleep(0.5)
    raise SystemExit("the demo did not become ready in time")


def _accounts(data_dir: Path) -> dict[str, str]:
    path = data_dir / "demo-accounts.txt"
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return {line.split("\t")[0]: line.split("\t")[1] for line in path.read_text().splitlines()
            if line and not line.startswith("#")}


def _sign_in(browser, url: str, name: str, password: str, locale: str = "en-GB"):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 820})
    page = context.new_page()
    page.goto(f"{url}/user/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def _shot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"docs/screenshots/{name}.png")


def take(url: str, accounts: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        researcher = _sign_in(browser, url, "researcher", accounts["researcher"])
        researcher.goto(f"{url}/?q=weather")
        _shot(researcher, "search")
        researcher.goto(f"{url}/dataset/seattle-weather")
        _shot(researcher, "dataset")
        researcher.get_by_role("link", name="Explore data").first.click()
        researcher.wait_for_load_state()
        _shot(researcher, "grid")
        rid = requests.get(f"{url}/api/3/action/package_show", params={"id": "seattle-weather"},
                           timeout=10).json()["result"]["resources"][0]["id"]
        researcher.goto(f"{url}/sql?resource_id={rid}")
        researcher.get_by_label("Query").fill(f'SELECT weather, count(*) AS days, round(avg(temp_max), 1) AS mean_max\n'
                                            f'FROM "{rid}" GROUP BY weather ORDER BY days DESC')
        researcher.get_by_role("button", name="Run").click()
        researcher.locator("#sql-wrap").wait_for(state="visible")
        _shot(researcher, "sql-console")
        provider = _sign_in(browser, url, "demo", accounts["demo"])
        provider.goto(f"{url}/dashboard")
        _shot(provider, "provider-dashboard")
        auditor = _sign_in(browser, url, "auditor", accounts["auditor"])
        auditor.goto(f"{url}/compliance")
        _shot(auditor, "compliance-dashboard")
        browser.close()


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    mosu = [sys.executable, "-m", "catalog.cli"]  # this checkout's code, whatever the venv has installed
    with tempfile.TemporaryDirectory(prefix="mosu-shots-") as tmp:
        data_dir, port = Path(tmp) / "data", _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MOSU_DATA_DIR": str(data_dir), "PYTHONPATH": str(root)}
        with open(Path(tmp) / "mosu.log", "wb") as log:
            proc = subprocess.Popen([*mosu, "up", "--demo", "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(url)
            take(url, _accounts(data_dir))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
