"""The web UI in a real headless Chromium, against the real ``cmfgit ui`` server on a repo
made here: runs (search, a bad search's caret, sort, paging), a run, compare, lineage,
artifacts and pipelines; and the escaping test (markup in a stage name, a param and a tag
shows as text and runs nothing).

One server and one Chromium for the module: each test opens a route and asserts on what
the page shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chrome, wait_for, wait_until
from conftest import make_repo

XSS_STAGE = "<script>window.__pwned='stage'</script>"
XSS_PARAM = "\"><img src=x onerror=\"window.__pwned='param'\">"
XSS_PATH = "<img src=x onerror=window.__pwned=5>.txt"
XSS_TAG = "<img src=x onerror=\"window.__pwned='tag'\"><script>window.__pwned='tag2'</script>"

# Recorded in one process with the Python API (a few seconds, not a start-up per run).
_RECORD = r"""
import json, os, sys
import cmfgit

XSS_STAGE, XSS_PARAM, XSS_TAG, XSS_PATH = json.loads(sys.argv[1])

def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

write("data/raw.csv", "a,b\n1,2\n3,4\n")
with cmfgit.run(pipeline="wine", stage="prepare", params={"split": 0.25, "seed": 7}, command=["python", "prepare.py"]) as run:
    run.log_input("data/raw.csv", type="dataset")
    write("data/train.csv", "a,b\n1,2\n")
    run.log_output("data/train.csv", type="dataset")
ids = {"prepare": run.id, "train": []}
lrs = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
for i, lr in enumerate(lrs):
    optimizer = "adam" if i % 2 == 0 else "sgd"
    with cmfgit.run(pipeline="wine", stage="train", params={"lr": lr, "epochs": 3 + i % 3, "optimizer": optimizer},
                    command=["python", "train.py", str(lr)]) as run:
        run.log_input("data/train.csv", type="dataset")
        write(f"models/model_{i}.pkl", f"model {i} {lr}\n")
        run.log_output(f"models/model_{i}.pkl", type="model")
        for step in range(5):
            run.log_metric("loss", round(1.0 / (1 + step * lr * 10 + i), 6), step=step)
        run.log_metrics({"acc": round(0.5 + i * 0.04, 4), "rmse": round(1.0 - i * 0.05, 4)})
    ids["train"].append(run.id)
# A failed run: an exception inside the block writes the record with exit code 1.
try:
    with cmfgit.run(pipeline="wine", stage="train", params={"lr": 9.0, "epochs": 1, "optimizer": "adam"},
                    command=["python", "train.py", "9.0"]) as run:
        run.log_input("data/train.csv", type="dataset")
        raise RuntimeError("diverged")
except RuntimeError:
    pass
ids["failed"] = run.id
with cmfgit.run(pipeline="wine", stage="evaluate", params={"threshold": 0.5}, command=["python", "evaluate.py"]) as run:
    run.log_input("models/model_3.pkl", type="model")
    write("report.json", "{}\n")
    run.log_output("report.json", type="metrics")
    run.log_metrics({"auc": 0.91})
ids["evaluate"] = run.id
with cmfgit.run(pipeline="nlp", stage="tokenize", params={"vocab": 32000}, command=["python", "tok.py"]) as run:
    run.log_input("data/raw.csv", type="dataset")
    write("data/tokens.bin", "tokens\n")
    run.log_output("data/tokens.bin", type="dataset")
ids["tokenize"] = run.id
with cmfgit.run(pipeline="evil", stage=XSS_STAGE, params={"note": XSS_PARAM}, command=["echo", XSS_PARAM]) as run:
    run.log_input("data/tokens.bin", type="dataset")
    write(XSS_PATH, "x\n")
    run.log_output(XSS_PATH, type="dataset")
    run.log_metrics({"score": 1.5})
ids["evil"] = run.id
cmfgit.tag(ids["evil"], {"note": XSS_TAG})
cmfgit.tag(ids["train"][-1], {"status": "best"})
print(json.dumps(ids))
"""


def record_runs(repo: Path) -> dict[str, Any]:
    """The runs the tests browse: pipelines wine (prepare, 10 train runs and a failed one,
    evaluate), nlp (tokenize) and evil (markup in its stage, a param and a tag)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RECORD, json.dumps([XSS_STAGE, XSS_PARAM, XSS_TAG, XSS_PATH])],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ids: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return ids


class Ui:
    def __init__(self, url: str, ids: dict[str, Any], driver: Any) -> None:
        self.url = url
        self.ids = ids
        self.driver = driver

    def api(self, endpoint: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}api/{endpoint}?{query}", timeout=30) as resp:
            return json.loads(resp.read())

    def open(self, route: str) -> Any:
        """Open ``#/<route>`` on a fresh page load (the page's own state starts over)."""
        self.driver.get("about:blank")
        self.driver.get(self.url + "#/" + route)
        return self.driver

    def go(self, route: str) -> Any:
        """Follow a route inside the page, as a link would."""
        self.driver.execute_script("location.hash = arguments[0]", "#/" + route)
        return self.driver

    def texts(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def pwned(self) -> Any:
        return self.driver.execute_script("return window.__pwned === undefined ? null : window.__pwned")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    # (module scope: the autouse isolated_env is per test, so set the same things up here)
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = t\n\temail = t@example.invalid\n[init]\n\tdefaultBranch = main\n")
    src = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    old = dict(os.environ)
    os.environ.update(env)
    try:
        repo = make_repo(root / "uirepo", site="lab")
        ids = record_runs(repo)
    finally:
        os.environ.clear()
        os.environ.update(old)
    server = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", "ui", "--port", "0", "--no-browser"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert " at http://" in line, (line, server.stderr.read() if server.poll() is not None else "")
        url = line.split(" at ", 1)[1].split()[0]
        with chrome() as driver:
            yield Ui(url, ids, driver)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
