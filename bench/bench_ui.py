"""The web UI at scale: the runs API, first paint in Chromium, ``site build``, beside MLflow's UI.

    python bench/run.py --only ui            # 100,000 and 1,000,000 runs (10,000 with --quick)

1. Repositories of N runs from ``bench/gen_records.py`` (committed, index built). They take
   minutes at a million, so ``$CMFGIT_BENCH_UI_DIR`` keeps them between runs (``r<N>/``,
   reused while ``r<N>/.bench-records`` says N); without it they go to the temp dir.
2. The runs API (``/api/runs``): the first page (50 runs, newest first) and ``--where``
   pages, warm. In-process: ``cmfgit.ui.api.runs`` and its JSON encoding, with the total
   kept from the page before (paging) and computed again (a new expression); over HTTP: a
   round trip to the real ``cmfgit ui`` server on 127.0.0.1 (a new connection each time).
3. Time to first paint of the runs page in headless Chromium (Debian's, through selenium,
   the flags of tests/browser.py): the Performance API's ``first-contentful-paint``, and the
   time until the first ``tr.run`` row is in the page (a MutationObserver installed before
   the page's own scripts), both from navigation start; at the smaller size of the run,
   from the local server and for the static site (``cmfgit site build``) from a local
   static server (``python -m http.server``). The first load, then warm loads.
4. ``cmfgit site build`` of those runs: wall time and the size written.
5. MLflow (``$CMFGIT_BENCH_MLFLOW``, the peer's python): the same runs bulk-loaded into an
   sqlite tracking store (bench/mlflow_ui.py), ``mlflow server`` started, and its runs
   search API (what its UI's runs table calls) timed for the same questions; its UI's
   first paint in the same Chromium. Its search returns no total; cmfgit's payload counts.

Selenium comes from ``$CMFGIT_BENCH_SELENIUM_PYTHON``, else the first of the bench venv's
python and the interpreter running this that can import it; without it (or without
Chromium) the browser rows are left empty, with a note.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import common

NAME = "ui"
TITLE = "web UI: runs API pages at 100k/1M runs, first paint in Chromium, site build, beside MLflow's server"

PAGE_TARGET_MS = 100
PAINT_SERVER_TARGET_MS = 1000
PAINT_STATIC_TARGET_MS = 2000
SITE_TARGET_S = 30

# The questions, as cmfgit asks them (MLflow's wording is in bench/mlflow_ui.py).
SPECS = [
    {"label": "first page", "peer": "first page"},
    {"label": "where pipeline and stage", "where": "pipeline == 'pipe03' and stage == 'evaluate'",
     "peer": "pipeline and stage"},
    {"label": "where metric range", "where": "metrics.acc > 0.8", "peer": "metric range"},
    {"label": "where param and metric", "where": "params.optimizer == 'adam' and metrics.loss < 0.3",
     "peer": "param and metric"},
    {"label": "page 21 (offset 1000)", "offset": 1000},
    {"label": "sorted by a metric", "sort": "-metrics.loss"},
]  # fmt: skip

BROWSER = r"""
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
flags, chromium, driver_path, urls, repeats, selector = json.loads(sys.argv[1])
options = webdriver.ChromeOptions()
options.binary_location = chromium
for flag in flags:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service(driver_path), options=options)
driver.set_page_load_timeout(120)
probe = '''
window.__rowsAt = null;
new MutationObserver(function (m, obs) {
  if (document.querySelector(%s)) { window.__rowsAt = performance.now(); obs.disconnect(); }
}).observe(document, {subtree: true, childList: true});
''' % json.dumps(selector)
driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": probe})
out = {}
try:
    for label, url in urls.items():
        loads = []
        for i in range(repeats + 1):
            driver.get("about:blank")
            driver.get(url)
            deadline = time.time() + 30
            got = None
            while time.time() < deadline:
                got = driver.execute_script(
                    "var p = performance.getEntriesByName('first-contentful-paint')[0];"
                    "return [p ? p.startTime : null, window.__rowsAt, document.querySelectorAll(arguments[0]).length,"
                    " document.body ? document.body.innerText.length : 0];",
                    selector,
                )
                if got[1] is not None and got[0] is not None:
                    break
                time.sleep(0.05)
            loads.append({"fcp_ms": got[0], "rows_ms": got[1], "rows": got[2], "text": got[3]})
            if got[1] is None:
                break  # no rows within the deadline: the page does not show runs (yet)
        out[label] = loads
finally:
    driver.quit()
print(json.dumps(out))
"""

FLAGS = [
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
    "--window-size=1400,1000",
]  # fmt: skip  (tests/browser.py's)


def sizes(ctx: common.Context) -> list[int]:
    env = os.environ.get("CMFGIT_BENCH_UI_SIZES")
    if env:
        return [int(x) for x in env.split(",")]
    return [10_000] if ctx.quick else [100_000, 1_000_000]


def base_dir(ctx: common.Context) -> Path:
    env = os.environ.get("CMFGIT_BENCH_UI_DIR")
    return Path(env) if env else ctx.tmp


def repo_of(ctx: common.Context, n: int) -> tuple[Path, dict[str, Any]]:
    """A committed repository of n runs, index built; reused when it is there."""
    repo = base_dir(ctx) / f"r{n}"
    marker = repo / ".bench-records"
    facts: dict[str, Any] = {}
    if not (marker.exists() and marker.read_text().strip() == str(n)):
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        ctx.run(["git", "init", "-q", "-b", "main"], repo)
        ctx.run([ctx.cmfgit, "init"], repo)
        t0 = time.perf_counter()
        ctx.run([ctx.python, str(common.BENCH_DIR / "gen_records.py"), str(repo), str(n)])
        facts["generate_s"] = round(time.perf_counter() - t0, 1)
        (repo / ".git" / "info" / "exclude").write_text(".bench-records\n")
        ctx.run(["git", "add", "-A"], repo)
        ctx.run(["git", "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", f"{n} records"], repo)
        marker.write_text(f"{n}\n")
    facts["index"] = ctx.worker("ui_worker", "build", str(repo))
    if facts["index"]["executions"] != n:
        raise RuntimeError(f"{repo}: the index has {facts['index']['executions']} executions, not {n}")
    return repo, facts


class Server:
    """A process serving HTTP on 127.0.0.1 whose first line of output names its URL."""

    def __init__(self, ctx: common.Context, argv: list[str], cwd: Path, marker: str) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=ctx.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        t0 = time.perf_counter()
        self.url = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if marker in line:
                found = re.search(r"http://[^\s)]+", line)
                self.url = found.group(0).rstrip("/") if found else ""
                break
        if not self.url:
            raise RuntimeError(f"{argv[0]} did not start: {self.proc.wait()}")
        self.start_s = time.perf_counter() - t0

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


def http_get(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def runs_url(base: str, spec: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    query = {k: spec[k] for k in ("where", "sort", "offset") if spec.get(k) is not None}
    return f"{base}/api/runs?{urlencode({**query, 'limit': 50})}"


def time_http(server: Server, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in SPECS:
        url = runs_url(server.url, spec)
        first, body = http_get(url)
        payload = json.loads(body)
        samples = [http_get(url)[0] for _ in range(repeats)]
        out[spec["label"]] = {
            "first_s": round(first, 5),
            "warm_median_s": round(statistics.median(samples), 5),
            "warm_min_s": round(min(samples), 5),
            "total": payload.get("total"),
            "rows": len(payload.get("rows", [])),
            "bytes": len(body),
        }
    return out


def selenium_python(ctx: common.Context) -> str | None:
    candidates = [os.environ.get("CMFGIT_BENCH_SELENIUM_PYTHON"), ctx.python, sys.executable]
    for python in filter(None, candidates):
        if subprocess.run([python, "-c", "import selenium"], capture_output=True).returncode == 0:
            return python
    return None


def browser(ctx: common.Context, urls: dict[str, str], repeats: int, selector: str = "tr.run") -> dict[str, Any] | None:
    python = selenium_python(ctx)
    chromium = os.environ.get("CMFGIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("CMFGIT_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if python is None or not (os.path.exists(chromium) and os.path.exists(driver)):
        return None
    profile = ctx.mkdtemp("chromium-")
    args = [[*FLAGS, f"--user-data-dir={profile}"], chromium, driver, urls, repeats, selector]
    proc = ctx.run([python, "-c", BROWSER, json.dumps(args)])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def paint_summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    warm = loads[1:] or loads
    fcp = [x["fcp_ms"] for x in warm if x["fcp_ms"] is not None]
    rows = [x["rows_ms"] for x in warm if x["rows_ms"] is not None]
    return {
        "first_load": loads[0],
        "fcp_median_ms": round(statistics.median(fcp), 1) if fcp else None,
        "rows_median_ms": round(statistics.median(rows), 1) if rows else None,
        "rows_shown": warm[-1]["rows"],
        "loads": loads,
    }


def mlflow_peer(ctx: common.Context, repo: Path, n: int, repeats: int, keep: bool = False) -> dict[str, Any] | None:
    python = ctx.peer("mlflow")
    if not python:
        return None
    work = base_dir(ctx) / f"mlflow-{n}"
    work.mkdir(parents=True, exist_ok=True)
    runs = work / "runs.jsonl"
    if not runs.exists():
        ctx.worker("ui_worker", "export", str(repo), str(runs))
    args = [str(runs), str(work), "--repeats", str(repeats)] + (["--keep-server"] if keep else [])
    proc = ctx.run([python, str(common.BENCH_DIR / "mlflow_ui.py"), *args], timeout=7200)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run(ctx: common.Context) -> dict[str, Any]:
    repeats = 5 if ctx.quick else 15
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"sizes": {}}
    notes: list[str] = []
    paint_n = min(sizes(ctx))
    for n in sizes(ctx):
        load_start = common.loadavg()
        repo, facts = repo_of(ctx, n)
        inproc = ctx.worker("ui_worker", "api", str(repo), json.dumps(SPECS), str(repeats))
        server = Server(ctx, [ctx.cmfgit, "ui", "--port", "0", "--no-browser"], repo, "cmfgit ui: serving")
        try:
            http = time_http(server, repeats)
            paint = None
            if n == paint_n:
                try:
                    paint = browser(ctx, {"server": server.url + "/#/runs"}, 5 if ctx.quick else 10)
                except Exception as exc:
                    notes.append(f"{n:,} runs: first paint from the server not measured: {str(exc).strip()[-300:]}")
        finally:
            server.stop()
        peer = mlflow_peer(ctx, repo, n, repeats if n < 1_000_000 else 5, keep=n == paint_n)  # (seconds a search at 1M)
        if peer is not None and peer.get("pid"):
            try:  # its UI's runs page, in the same Chromium (its rows are ag-grid's)
                url = f"{peer['url']}/#/experiments/{peer['experiment_id']}/runs?workflowType=machine_learning"
                shown = browser(ctx, {"mlflow": url}, 5 if ctx.quick else 10, selector=".ag-row")
                if shown is not None:
                    peer["paint"] = paint_summary(shown["mlflow"])
            except Exception as exc:
                notes.append(f"{n:,} runs: MLflow's UI first paint not measured: {str(exc).strip()[-300:]}")
            finally:
                try:
                    os.killpg(int(peer["pid"]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        size: dict[str, Any] = {"repo": facts, "inproc": inproc, "http": http, "mlflow": peer, "load": load_start}
        raw["sizes"][str(n)] = size
        for spec in SPECS:
            label = spec["label"]
            ours, over = inproc[label], http[label]
            peer_s = peer["search"][spec["peer"]]["warm_median_s"] if peer and spec.get("peer") else None
            rows.append(
                common.row(
                    f"{n:,} runs, {label}: payload in process (count recomputed)",
                    common.ms(ours["count_recomputed_median_s"]),
                    "ms",
                    target=f"≤ {PAGE_TARGET_MS} ms",
                    met=common.ms(ours["count_recomputed_median_s"]) <= PAGE_TARGET_MS,
                    note=f"total {ours['total']:,}",
                )
            )
            rows.append(
                common.row(
                    f"{n:,} runs, {label}: HTTP round trip, warm",
                    common.ms(over["warm_median_s"]),
                    "ms",
                    peer=None if peer_s is None else common.ms(peer_s),
                    peer_name="MLflow runs/search over HTTP" if peer_s is not None else "",
                    target=f"≤ {PAGE_TARGET_MS} ms",
                    met=common.ms(over["warm_median_s"]) <= PAGE_TARGET_MS,
                )
            )
        if paint is not None:
            summary = paint_summary(paint["server"])
            size["paint_server"] = summary
            rows += paint_rows(n, "local server", summary, PAINT_SERVER_TARGET_MS, (peer or {}).get("paint"))
        # The static site of the same runs.
        if n == paint_n:
            try:
                rows += static_site(ctx, repo, n, size)
            except Exception as exc:  # the rest of the figures stand without it
                notes.append(f"{n:,} runs: site build / static first paint not measured: {str(exc).strip()[-300:]}")
        size["loadavg_end"] = common.loadavg()
        notes.append(f"{n:,} runs: load average {load_start} -> {size['loadavg_end']}")
    if not ctx.peer("mlflow"):
        notes.append("MLflow not found ($CMFGIT_BENCH_MLFLOW or /opt/peers/mlflow/bin/python): no peer column")
    if selenium_python(ctx) is None:
        notes.append("selenium or Chromium missing: no first-paint rows")
    notes.append("payload: cmfgit.ui.api.runs + json.dumps in one process; HTTP: urllib, a new connection per request")
    notes.append("MLflow's runs/search returns no total (page tokens); cmfgit's page includes the count")
    return {"rows": rows, "raw": raw, "notes": notes}


def paint_rows(
    n: int, where: str, summary: dict[str, Any], target: int, peer: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    rows_ms = summary["rows_median_ms"]
    name = "MLflow's UI, its runs page" if peer else ""
    first = summary["first_load"]["rows_ms"]
    return [
        common.row(
            f"{n:,} runs, runs page from the {where}: first contentful paint, warm",
            summary["fcp_median_ms"],
            "ms",
            peer=peer["fcp_median_ms"] if peer else None,
            peer_name=name,
        ),
        common.row(
            f"{n:,} runs, runs page from the {where}: rows shown, warm",
            rows_ms,
            "ms",
            peer=peer["rows_median_ms"] if peer else None,
            peer_name=name,
            target=f"≤ {target} ms",
            met=None if rows_ms is None else rows_ms <= target,
            note=f"first load {first:.0f} ms" if first else "",
        ),
    ]


def static_site(ctx: common.Context, repo: Path, n: int, size: dict[str, Any]) -> list[dict[str, Any]]:
    """``cmfgit site build`` of the runs, then the runs page's first paint from a local static server."""
    rows: list[dict[str, Any]] = []
    site = ctx.mkdtemp("site-") / "site"
    t0 = time.perf_counter()
    ctx.run([ctx.cmfgit, "site", "build", str(site)], repo, timeout=3600)
    took = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    files = sum(1 for f in site.rglob("*") if f.is_file())
    size["site_build"] = {"s": round(took, 2), "bytes": written, "files": files}
    rows.append(
        common.row(
            f"{n:,} runs: cmfgit site build", round(took, 2), "s",
            target=f"≤ {SITE_TARGET_S} s", met=took <= SITE_TARGET_S,
            note=f"{written / 1e6:.0f} MB in {files:,} files",
        )
    )  # fmt: skip
    static = Server(
        ctx, [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "--directory", str(site)],
        site, "Serving HTTP",
    )  # fmt: skip
    try:
        static.url = static.url.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1")
        paint = browser(ctx, {"static": static.url + "/index.html#/runs"}, 5 if ctx.quick else 10)
    finally:
        static.stop()
    if paint is not None:
        summary = paint_summary(paint["static"])
        size["paint_static"] = summary
        rows += paint_rows(n, "static site, local static server", summary, PAINT_STATIC_TARGET_MS)
    shutil.rmtree(site, ignore_errors=True)
    return rows
