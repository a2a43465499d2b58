"""Screenshots of the web UI's pages for the README and the guide, from the demo's data.

    python scripts/screenshots.py [--out docs/img] [--keep DIR]

1. ``cmfgit demo --dir DIR/demo``: the two-site pipeline, pushed to a central repository.
2. ``cmfgit ui --global`` in the lab's clone (every site's runs), on 127.0.0.1, no browser.
3. Headless Chromium (Debian's ``chromium`` + ``chromium-driver``, through selenium, the
   flags of tests/browser.py) opens each page, waits for what the page shows (the DOM
   hooks of docs/ui: rows, the laid-out graph, ...) and saves a PNG:
   runs, run, compare, lineage, artifacts, artifact, pipelines.
4. ``cmfgit site build`` of the same view, opened from ``file://``: the static site's runs page.

Everything runs with this interpreter's cmfgit (``python -m cmfgit``), so the pictures show
the tree they are made from. Needs selenium and Chromium (``apt-get install chromium
chromium-driver``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CMFGIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CMFGIT_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
WIDTH, HEIGHT = 1280, 800
MAX_HEIGHT = 1500


def cmfgit(cwd: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "cmfgit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise SystemExit(f"cmfgit {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


class UiServer:
    """``cmfgit ui`` as a user starts it, on any free port."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        argv = [sys.executable, "-m", "cmfgit", "ui", "--port", "0", "--no-browser", *args]
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            found = re.search(r"http://[^\s)]+", line)
            if found:
                self.url = found.group(0).rstrip("/")
                break
        if not self.url:
            raise SystemExit(f"cmfgit ui did not start (exit {self.proc.wait()})")

    def get(self, endpoint: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/{endpoint}", timeout=60) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.add_argument("--allow-file-access-from-files")  # the static site from file://
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='cmfgit-shots-')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


MISSING: list[str] = []


def shoot(driver: Any, url: str, ready: str, path: Path, settle: float = 0.6) -> None:
    """Open ``url`` afresh, wait until ``ready`` (a CSS selector) is in the page, save a PNG
    (a page that never shows it is reported, and left out)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    try:
        WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))
    except Exception as exc:
        print(f"  MISSING {path.name}: {url}: '{ready}' never showed up ({type(exc).__name__})")
        MISSING.append(path.name)
        return
    time.sleep(settle)  # charts and graph layouts finish their animation
    errors = driver.execute_script("return document.querySelector('#error, .error:not(:empty)')?.textContent || ''")
    if errors:
        print(f"  note: {path.name}: the page shows an error: {errors.strip()[:200]}")
    # The whole page, down to MAX_HEIGHT: a run's or a comparison's page is longer than the window.
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(max(height, 400), MAX_HEIGHT), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go (default docs/img)")
    ap.add_argument("--keep", type=Path, help="build the demo here and keep it (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="cmfgit-shots-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"building the demo in {work / 'demo'}")
        cmfgit(work, "demo", "--dir", str(work / "demo"))
        lab = work / "demo" / "lab"
        subprocess.run(["git", "fetch", "-q", "origin"], cwd=lab, check=True)  # the other site's runs too
        server = UiServer(lab, "--global")
        driver = browser()
        try:
            runs = server.get("runs?limit=50")["rows"]
            if not runs:
                raise SystemExit("the demo's global view has no runs")
            by_stage: dict[str, list[dict[str, Any]]] = {}
            for row in runs:
                by_stage.setdefault(row["stage"], []).append(row)
            trains = by_stage.get("train", runs)
            last = next((r for r in runs if r["stage"] == "evaluate"), runs[0])
            same = [r for r in runs if r not in trains and r["pipeline"] == trains[0]["pipeline"]]
            picked = (trains + same + [r for r in runs if r not in trains and r not in same])[:3]
            arts = server.get("artifacts?limit=50")["rows"]
            model = next((a for a in arts if a.get("type") == "model"), arts[0] if arts else None)
            base = server.url + "/"
            print("taking the screenshots")
            shoot(driver, base + "#/runs", "tr.run", out / "runs.png")
            shoot(driver, base + f"#/run/{trains[0]['id']}", "#run table#params", out / "run.png", settle=1.0)
            shoot(driver, base + "#/compare/" + ",".join(r["id"] for r in picked), "table#compare", out / "compare.png")
            lineage = base + f"#/lineage/{last['id']}?dir=up&depth=6"
            shoot(driver, lineage, "#graph[data-nodes]", out / "lineage.png", 1.5)
            shoot(driver, base + "#/artifacts", "tr.artifact", out / "artifacts.png")
            if model is not None:
                shoot(driver, base + f"#/artifact/{model['hash']}", "#artifact", out / "artifact.png")
            shoot(driver, base + "#/pipelines", "#pipeline-graph[data-nodes]", out / "pipelines.png", 1.5)
            server.stop()
            site = work / "site"
            cmfgit(lab, "site", "build", str(site), "--global")
            shoot(driver, (site / "index.html").as_uri() + "#/runs", "tr.run", out / "site-runs.png")
        finally:
            driver.quit()
            server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if MISSING:
        print(f"not made (the page did not show its content): {', '.join(MISSING)}")
        return 1
    print(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
