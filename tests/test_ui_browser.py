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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chrome
from conftest import make_repo

XSS_STAGE = "<script>window.__pwned='stage'</script>"
XSS_PARAM = '"><img src=x onerror="window.__pwned=\'param\'">'
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
prepare = {"split": 0.25, "seed": 7}
with cmfgit.run(pipeline="wine", stage="prepare", params=prepare, command=["python", "prepare.py"]) as run:
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
# Two versions of data/tokens.bin.
ids["tokenize"] = []
for vocab in (16000, 32000):
    with cmfgit.run(pipeline="nlp", stage="tokenize", params={"vocab": vocab}, command=["python", "tok.py"]) as run:
        run.log_input("data/raw.csv", type="dataset")
        write("data/tokens.bin", f"tokens {vocab}\n")
        run.log_output("data/tokens.bin", type="dataset")
    ids["tokenize"].append(run.id)
with cmfgit.run(pipeline="evil", stage=XSS_STAGE, params={"note": XSS_PARAM}, command=["echo", XSS_PARAM]) as run:
    run.log_input("data/tokens.bin", type="dataset")
    write(XSS_PATH, "x\n")
    run.log_output(XSS_PATH, type="dataset")
    run.log_metrics({"score": 1.5})
ids["evil"] = run.id
# A sweep whose lineage has 1,000 nodes: data/big.csv -> 111 runs -> 8 outputs each.
write("data/big.csv", "big\n")
for i in range(111):
    with cmfgit.run(pipeline="sweep", stage="fit", params={"i": i}, command=["python", "fit.py"]) as run:
        run.log_input("data/big.csv", type="dataset")
        for k in range(8):
            write(f"sweep/{i}/{k}.out", f"{i} {k}\n")
            run.log_output(f"sweep/{i}/{k}.out", type=("model", "metrics", "dataset")[k % 3])
        run.log_metrics({"score": i / 111})
cmfgit.tag(ids["evil"], {"note": XSS_TAG})
cmfgit.tag(ids["train"][-1], {"status": "best"})
print(json.dumps(ids))
"""


def record_runs(repo: Path) -> dict[str, Any]:
    """The runs the tests browse: pipelines wine (prepare, 10 train runs and a failed one,
    evaluate), nlp (tokenize, twice: two versions of data/tokens.bin), evil (markup in its
    stage, a param, a path and a tag) and sweep (111 runs of 8 outputs: the lineage of data/big.csv
    has 1,000 nodes)."""
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
    (home / ".gitconfig").write_text(
        "[user]\n\tname = t\n\temail = t@example.invalid\n[init]\n\tdefaultBranch = main\n"
    )
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
        # A GitHub remote: the run page links the code version to its commit page.
        subprocess.run(
            ["git", "remote", "add", "origin", "https://github.com/example/uirepo.git"], cwd=repo, check=True
        )
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


def wait_for(driver: Any, css: str, timeout: float = 30) -> Any:
    """The first element matching ``css``, once it is there (polled often: the pages are quick)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    found = ec.presence_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(found)


def wait_until(driver: Any, predicate: Any, timeout: float = 30) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(lambda d: predicate(d))


WINE = 'pipeline == "wine"'
TRAIN = 'pipeline == "wine" and stage == "train"'


def q(where: str) -> str:
    return urllib.parse.quote(where, safe="")


def row_ids(ui: Ui) -> list[str]:
    return [e.get_attribute("data-id") for e in ui.driver.find_elements("css selector", "table#runs tr.run")]


def wait_rows(ui: Ui, ids: list[str]) -> None:
    wait_until(ui.driver, lambda d: row_ids(ui) == ids)


def search(ui: Ui, expression: str) -> None:
    box = wait_for(ui.driver, "input#where")
    box.clear()
    box.send_keys(expression)
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.ENTER)


def test_runs_page_shows_runs_and_failed_ones_stand_out(ui: Ui) -> None:
    ui.open("runs?where=" + q(WINE))
    wait_for(ui.driver, "table#runs tr.run")
    api = ui.api("runs", where=WINE)
    assert wait_for(ui.driver, "#runs-total").text.startswith("13 runs")
    assert row_ids(ui) == [r["id"] for r in api["rows"]]
    failed = ui.driver.find_elements("css selector", "tr.run.failed")
    assert [f.get_attribute("data-id") for f in failed] == [ui.ids["failed"]]
    assert "failed" in failed[0].find_element("css selector", "td.status").text
    headers = ui.texts("table#runs thead tr:last-child th")
    assert headers[2:8] == ["pipeline", "stage", "started", "duration", "status", "site"]
    assert {"lr", "epochs", "acc"} <= set(headers)
    assert wait_for(ui.driver, "#page-info").text == "1–13 of 13"
    # Newest first unless told otherwise.
    assert "desc" in ui.driver.find_element("css selector", 'th[data-sort="started_at"]').get_attribute("class")


def test_choose_columns(ui: Ui) -> None:
    ui.open("runs?where=" + q(WINE) + "&params=lr&metrics=acc")
    wait_for(ui.driver, "table#runs tr.run")
    assert ui.texts("table#runs thead tr:last-child th")[8:] == ["lr", "acc"]
    ui.driver.find_element("css selector", "details#columns summary").click()
    ui.driver.find_element("css selector", 'input.col[data-ns="metrics"][value="rmse"]').click()
    ui.driver.find_element("css selector", 'input.col[data-ns="params"][value="lr"]').click()
    ui.driver.find_element("css selector", "button#apply-columns").click()
    wait_until(ui.driver, lambda d: ui.texts("table#runs thead tr:last-child th")[8:] == ["acc", "rmse"])
    expected = {r["id"]: r["metrics"].get("rmse") for r in ui.api("runs", where=WINE, metrics="acc,rmse")["rows"]}
    shown = {
        e.get_attribute("data-id"): e.find_element("css selector", 'td[data-key="rmse"]').text
        for e in ui.driver.find_elements("css selector", "table#runs tr.run")
    }
    assert shown == {rid: "" if v is None else f"{v:g}" for rid, v in expected.items()}


def test_where_search_and_its_error_with_a_caret(ui: Ui) -> None:
    ui.open("runs")
    wait_for(ui.driver, "table#runs tr.run")
    expression = TRAIN + " and params.lr >= 0.1"
    search(ui, expression)
    expected = [r["id"] for r in ui.api("runs", where=expression)["rows"]]
    assert len(expected) == 5  # 0.1, 0.2, 0.5, 1.0 and the failed 9.0
    wait_rows(ui, expected)
    assert ui.driver.find_element("css selector", "#runs-total").text == "5 runs match"
    assert "where=" in ui.driver.current_url

    bad = "params.lr >= and stage == 'x'"
    search(ui, bad)
    error = wait_for(ui.driver, "#where-error")
    with pytest.raises(urllib.error.HTTPError) as info:
        ui.api("runs", where=bad)
    body = json.loads(info.value.read())
    assert error.find_element("css selector", ".message").text == body["error"]
    caret = error.find_element("css selector", "pre.caret").get_attribute("textContent")
    text, marker = caret.split("\n")
    assert text == bad
    assert marker == " " * body["where"]["pos"] + "^"
    assert ui.driver.find_elements("css selector", "table#runs tr.run") == []


def test_sort_by_a_column_then_descending(ui: Ui) -> None:
    ui.open("runs?where=" + q(TRAIN))
    wait_for(ui.driver, "table#runs tr.run")
    wait_for(ui.driver, 'th[data-sort="params.lr"]').click()
    lrs = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 9.0]

    def shown() -> list[float]:
        return [float(t) for t in ui.texts('table#runs tr.run td[data-key="lr"]')]

    wait_until(ui.driver, lambda d: "sort=params.lr" in d.current_url and shown() == lrs)
    assert "asc" in (ui.driver.find_element("css selector", 'th[data-sort="params.lr"]').get_attribute("class") or "")
    ui.driver.find_element("css selector", 'th[data-sort="params.lr"]').click()
    wait_until(ui.driver, lambda d: shown() == lrs[::-1])
    # Text columns too: by stage, over the whole pipeline.
    ui.open("runs?where=" + q(WINE) + "&sort=stage")
    wait_until(ui.driver, lambda d: len(ui.texts("table#runs tr.run td.stage")) == 13)
    assert ui.texts("table#runs tr.run td.stage") == ["evaluate", "prepare"] + ["train"] * 11

    # Duration (not a record field: seconds from start to end): shortest first, then longest.
    seconds = {r["id"]: r["duration"] for r in ui.api("runs", where=WINE, limit=100)["rows"]}
    assert len(seconds) == 13 and len(set(seconds.values())) > 5
    ui.open("runs?where=" + q(WINE))
    wait_for(ui.driver, "table#runs tr.run")
    wait_for(ui.driver, 'th[data-sort="duration"]').click()
    wait_until(ui.driver, lambda d: "sort=duration" in d.current_url and len(row_ids(ui)) == 13)
    wait_until(ui.driver, lambda d: [seconds[i] for i in row_ids(ui)] == sorted(seconds.values()))
    assert "asc" in (ui.driver.find_element("css selector", 'th[data-sort="duration"]').get_attribute("class") or "")
    assert sorted(row_ids(ui)) == sorted(seconds)
    ui.driver.find_element("css selector", 'th[data-sort="duration"]').click()
    wait_until(ui.driver, lambda d: [seconds[i] for i in row_ids(ui)] == sorted(seconds.values(), reverse=True))


def test_paging(ui: Ui) -> None:
    ui.open("runs")
    wait_for(ui.driver, "table#runs tr.run")
    total = ui.api("info")["executions"]
    assert total == 127
    assert wait_for(ui.driver, "#page-info").text == "1–50 of 127"
    assert ui.driver.find_element("css selector", "button#prev").get_attribute("disabled") is not None
    first = row_ids(ui)
    assert first == [r["id"] for r in ui.api("runs")["rows"]]
    ui.driver.find_element("css selector", "button#next").click()
    second = [r["id"] for r in ui.api("runs", offset=50)["rows"]]
    wait_rows(ui, second)
    assert ui.driver.find_element("css selector", "#page-info").text == "51–100 of 127"
    assert not set(first) & set(second)
    ui.driver.find_element("css selector", "button#prev").click()
    wait_rows(ui, first)


def test_run_page(ui: Ui) -> None:
    rid = ui.ids["train"][3]  # lr 0.01
    ui.open("run/" + rid[:12])
    page = wait_for(ui.driver, "#run")
    assert page.get_attribute("data-id") == rid
    params = dict(zip(ui.texts("table#params th"), ui.texts("table#params td")))
    assert params == {"epochs": "3", "lr": "0.01", "optimizer": "sgd"}
    metrics = dict(zip(ui.texts("table#metrics th"), ui.texts("table#metrics td")))
    assert metrics["acc"] == "0.62" and metrics["rmse"] == "0.85" and "loss" in metrics
    assert ui.texts("table#inputs a.artifact:not(.hash)") == ["data/train.csv"]
    assert ui.texts("table#outputs a.artifact:not(.hash)") == ["models/model_3.pkl"]
    out = ui.driver.find_element("css selector", "table#outputs tbody tr")
    assert out.find_elements("css selector", "td")[1].text == "model"
    assert out.find_elements("css selector", "td")[2].text == "13 B"
    run = ui.api("run", id=rid)["run"]
    link = out.find_element("css selector", "a.artifact")
    assert link.get_attribute("href").endswith("#/artifact/" + urllib.parse.quote(run["outputs"][0]["hash"], safe=""))
    chart = wait_for(ui.driver, '#steps .chart[data-metric="loss"] canvas')
    assert chart.is_displayed()
    assert (
        ui.driver.find_element("css selector", '#steps .chart[data-metric="loss"]').get_attribute("data-points") == "5"
    )
    assert run["git"]["commit"] in wait_for(ui.driver, "#code").text
    commit = ui.driver.find_element("css selector", "#code a.commit")
    assert commit.text == run["git"]["commit"]
    assert commit.get_attribute("href") == f"https://github.com/example/uirepo/commit/{run['git']['commit']}"
    assert "branch: main" in ui.driver.find_element("css selector", "#code").text
    assert ui.driver.find_element("css selector", "#command").text == "python train.py 0.01"
    assert "python" in ui.texts("#env th")
    assert ui.driver.find_element("css selector", "#site").text == "site: lab"
    assert ui.driver.find_element("css selector", "#exit-code").text == "exit code: 0"
    assert ui.driver.find_element("css selector", "a#lineage-link").get_attribute("href").endswith("#/lineage/" + rid)
    # The best run's tag.
    ui.go("run/" + ui.ids["train"][-1])
    wait_until(ui.driver, lambda d: ui.texts("table#tags td") == ["best"])
    # A run that is not there: the server's one-line message.
    ui.go("run/" + "f" * 12)
    with pytest.raises(urllib.error.HTTPError) as info:
        ui.api("run", id="f" * 12)
    assert wait_for(ui.driver, "#page-error").text == json.loads(info.value.read())["error"]


def test_compare_three_runs(ui: Ui) -> None:
    # lr 0.001 (adam), 0.005 (adam), 0.02 (adam): optimizer does not change, lr does.
    picks = [ui.ids["train"][i] for i in (0, 2, 4)]
    ui.open("runs?where=" + q(TRAIN))
    wait_for(ui.driver, "table#runs tr.run")
    assert ui.driver.find_element("css selector", "button#compare").get_attribute("disabled") is not None
    for rid in picks:
        ui.driver.find_element("css selector", f'input.pick[value="{rid}"]').click()
    ui.driver.find_element("css selector", "button#compare").click()
    wait_for(ui.driver, "table#compare")
    assert ui.driver.current_url.endswith("#/compare/" + ",".join(picks))
    api = ui.api("compare", ids=",".join(picks))
    lr = ui.driver.find_element("css selector", 'tr[data-key="params.lr"]')
    assert "changed" in lr.get_attribute("class")
    assert [td.text for td in lr.find_elements("css selector", "td.value")] == ["0.001", "0.005", "0.02"]
    (expected,) = [p for p in api["params"] if p["key"] == "lr"]
    shown = [float(td.text) for td in lr.find_elements("css selector", "td.delta")]
    assert shown == pytest.approx(expected["delta"][1:])
    assert [td.text for td in lr.find_elements("css selector", "td.delta")] == ["+0.004", "+0.019"]
    optimizer = ui.driver.find_element("css selector", 'tr[data-key="params.optimizer"]')
    assert "changed" not in (optimizer.get_attribute("class") or "")
    acc = ui.driver.find_element("css selector", 'tr[data-key="metrics.acc"]')
    assert [td.text for td in acc.find_elements("css selector", "td.delta")] == ["+0.08", "+0.16"]
    changed = {e.get_attribute("data-key") for e in ui.driver.find_elements("css selector", "table#compare tr.changed")}
    assert {"params.lr", "params.epochs", "metrics.acc", "metrics.rmse", "metrics.loss"} <= changed
    assert "params.optimizer" not in changed
    assert len(ui.driver.find_elements("css selector", "#parallel svg polyline")) == 3
    assert wait_for(ui.driver, '#curves .chart[data-metric="loss"] canvas').is_displayed()
    # Only what changed.
    ui.driver.find_element("css selector", "#only-changed").click()

    def only_changed(d: Any) -> bool:
        rows = d.find_elements("css selector", "table#compare tbody tr[data-key]")
        keys = {e.get_attribute("data-key") for e in rows}
        return "params.lr" in keys and "params.optimizer" not in keys

    wait_until(ui.driver, only_changed)
    assert ui.driver.current_url.endswith("?only=changed")


def graph_count(ui: Ui, css: str = "#graph", expected: int | None = None) -> int:
    """The node count the graph at ``css`` shows once laid out (``expected``: wait for that
    count, so a graph still on screen from the route before is not read by mistake)."""

    def shown(d: Any) -> str | None:
        found = d.find_elements("css selector", css)
        value = found[0].get_attribute("data-nodes") if found else None
        return value if value and (expected is None or value == str(expected)) else None

    return int(wait_until(ui.driver, shown, timeout=60))


def test_lineage_graph(ui: Ui) -> None:
    ui.open("lineage/" + q("data/train.csv") + "?dir=both")
    both = ui.api("lineage", target="data/train.csv", dir="both")
    assert graph_count(ui) == len(both["nodes"]) == 26
    assert ui.driver.execute_script("return window.cmfgitGraph.nodes().length") == 26
    assert ui.driver.execute_script("return window.cmfgitGraph.edges().length") == len(both["edges"])
    labels = set(ui.driver.execute_script("return window.cmfgitGraph.nodes().map(n => n.data('label'))"))
    assert {"raw.csv", "train.csv", "model_3.pkl", "report.json"} <= labels
    # Direction: up from train.csv is raw.csv -> prepare -> train.csv.
    from selenium.webdriver.support.ui import Select

    Select(ui.driver.find_element("css selector", "select#dir")).select_by_value("up")
    wait_until(ui.driver, lambda d: "dir=up" in d.current_url)
    up = ui.api("lineage", target="data/train.csv", dir="up")
    assert len(up["nodes"]) == 3
    assert graph_count(ui, expected=3) == 3
    # Depth: one execution hop down from raw.csv reaches prepare and tokenize, not train.
    ui.open("lineage/" + q("data/raw.csv") + "?dir=down")
    full = graph_count(ui)
    depth = wait_for(ui.driver, "input#depth")
    depth.send_keys("1")
    from selenium.webdriver.common.keys import Keys

    depth.send_keys(Keys.ENTER)
    wait_until(ui.driver, lambda d: "depth=1" in d.current_url)
    one = ui.api("lineage", target="data/raw.csv", dir="down", depth=1)
    assert len(one["nodes"]) < full
    assert graph_count(ui, expected=len(one["nodes"])) == len(one["nodes"])
    # A click on a run's node opens its page.
    prepare = ui.ids["prepare"]
    ui.driver.execute_script("window.cmfgitGraph.getElementById(arguments[0]).emit('tap')", prepare)
    wait_for(ui.driver, f'#run[data-id="{prepare}"]')


def test_lineage_graph_of_1000_nodes(ui: Ui) -> None:
    api = ui.api("lineage", target="data/big.csv", dir="down")
    assert len(api["nodes"]) == 1000 and not api["truncated"]
    ui.open("lineage/" + q("data/big.csv") + "?dir=down")
    assert graph_count(ui) == 1000
    assert ui.driver.execute_script("return window.cmfgitGraph.nodes().length") == 1000
    # Laid out in layers: the input's rank, the runs', the outputs'.
    xs = ui.driver.execute_script(
        "const g = window.cmfgitGraph; const r = {};"
        "g.nodes().forEach(n => { const k = n.data('kind');"
        " (r[k] = r[k] || new Set()).add(Math.round(n.position('x'))); });"
        "return [r.execution.size, r.artifact.size];"
    )
    assert xs == [1, 2]
    assert "1,000 nodes" in ui.driver.find_element("css selector", "#graph-status").text
    # Still a working page: a click on one run of the thousand opens it.
    some = ui.driver.execute_script("return window.cmfgitGraph.nodes('[kind = \"execution\"]')[7].id()")
    ui.driver.execute_script("window.cmfgitGraph.getElementById(arguments[0]).emit('tap')", some)
    wait_for(ui.driver, f'#run[data-id="{some}"]')
    assert ui.driver.find_element("css selector", "#run h1 .stage").text == "fit"


def test_artifacts_and_pipelines_pages(ui: Ui) -> None:
    ui.open("artifacts")
    wait_for(ui.driver, "table#artifacts tr.artifact")
    from selenium.webdriver.support.ui import Select

    Select(ui.driver.find_element("css selector", "select#type")).select_by_value("model")
    wait_until(ui.driver, lambda d: "type=model" in d.current_url)
    api = ui.api("artifacts", type="model")
    wait_until(ui.driver, lambda d: ui.texts("table#artifacts tr.artifact td.type") == ["model"] * len(api["rows"]))
    assert [e.get_attribute("data-hash") for e in ui.driver.find_elements("css selector", "tr.artifact")] == [
        r["hash"] for r in api["rows"]
    ]
    assert wait_for(ui.driver, "#artifacts-total").text == f"{api['total']:,} artifacts"
    # One artifact: its versions and where it was used.
    run = ui.api("run", id=ui.ids["train"][3])["run"]
    model = run["outputs"][0]["hash"]
    ui.go("artifact/" + model)
    page = wait_for(ui.driver, "#artifact")
    assert page.get_attribute("data-hash") == model
    assert [
        e.get_attribute("data-hash") for e in ui.driver.find_elements("css selector", "table#versions tr.version")
    ] == [model]
    used = {
        (e.get_attribute("data-id"), e.find_elements("css selector", "td")[3].text)
        for e in ui.driver.find_elements("css selector", "table#used tbody tr")
    }
    assert used == {(ui.ids["train"][3], "output"), (ui.ids["evaluate"], "input")}
    # Every version of a path, and where each was used.
    first, second = (ui.api("run", id=rid)["run"]["outputs"][0]["hash"] for rid in ui.ids["tokenize"])
    ui.go("artifact/" + second)
    wait_for(ui.driver, f'#artifact[data-hash="{second}"]')
    versions = ui.driver.find_elements("css selector", "table#versions tr.version")
    assert {e.get_attribute("data-hash") for e in versions} == {first, second}
    used = {e.get_attribute("data-id") for e in ui.driver.find_elements("css selector", "table#used tbody tr")}
    assert used == {ui.ids["tokenize"][1], ui.ids["evil"]}
    ui.driver.find_element("css selector", f'tr.version[data-hash="{first}"] a').click()
    wait_for(ui.driver, f'#artifact[data-hash="{first}"]')
    used = {e.get_attribute("data-id") for e in ui.driver.find_elements("css selector", "table#used tbody tr")}
    assert used == {ui.ids["tokenize"][0]}
    # Pipelines: the stage DAG of wine and the runs per stage.
    ui.open("pipelines?name=wine")
    assert graph_count(ui, "#pipeline-graph") == 3
    assert ui.driver.execute_script("return window.cmfgitPipelineGraph.edges().length") == 2
    rows = {
        (e.get_attribute("data-pipeline"), e.get_attribute("data-stage")): e.find_elements("css selector", "td")[2].text
        for e in ui.driver.find_elements("css selector", "table#stages tr.stage")
    }
    assert rows[("wine", "train")] == "11" and rows[("wine", "prepare")] == "1" and rows[("sweep", "fit")] == "111"
    assert "failed" in ui.driver.find_element("css selector", 'tr.stage[data-stage="train"]').get_attribute("class")


def test_markup_in_records_is_shown_as_text_and_never_runs(ui: Ui) -> None:
    evil = ui.ids["evil"]

    def clean() -> None:
        assert ui.pwned() is None
        assert ui.driver.execute_script("return document.querySelectorAll('#page img, #page script').length") == 0

    ui.open("runs?where=" + q('pipeline == "evil"') + "&params=note")
    wait_for(ui.driver, f'tr.run[data-id="{evil}"]')
    assert ui.texts("table#runs tr.run td.stage") == [XSS_STAGE]
    assert ui.texts('table#runs tr.run td[data-key="note"]') == [XSS_PARAM]
    clean()
    # A --where on the markup itself: the value is data in the expression too.
    search(ui, "params.note == " + json.dumps(XSS_PARAM))
    wait_rows(ui, [evil])
    clean()

    ui.open("run/" + evil)
    wait_for(ui.driver, "#run")
    assert ui.driver.find_element("css selector", "#run h1 .stage").text == XSS_STAGE
    assert dict(zip(ui.texts("table#params th"), ui.texts("table#params td"))) == {"note": XSS_PARAM}
    assert dict(zip(ui.texts("table#tags th"), ui.texts("table#tags td"))) == {"note": XSS_TAG}
    assert ui.texts("table#outputs a.artifact:not(.hash)") == [XSS_PATH]
    assert '"><img src=x onerror=' in ui.driver.find_element("css selector", "#command").text  # (shell-quoted)
    clean()

    ui.go("lineage/" + evil)
    graph_count(ui)
    # The drawn labels (cut at 32 characters) and the whole names, as text.
    labels = ui.driver.execute_script("return window.cmfgitGraph.nodes().map(n => n.data('label'))")
    names = ui.driver.execute_script("return window.cmfgitGraph.nodes().map(n => n.data('full'))")
    assert XSS_PATH in names and XSS_PATH[:31] + "…" in labels
    assert any(name.startswith(XSS_STAGE) for name in names)
    ui.driver.find_element("css selector", "#graph canvas")
    clean()

    ui.open("pipelines?name=evil")
    graph_count(ui, "#pipeline-graph")
    assert XSS_STAGE in ui.texts("table#stages td.stage-name")
    clean()

    ui.open("artifacts?path=onerror")
    wait_for(ui.driver, "table#artifacts tr.artifact")
    assert ui.texts("table#artifacts a.artifact") == [XSS_PATH]
    clean()


def test_no_script_errors_and_nothing_the_csp_refused(ui: Ui) -> None:
    """Every page this module opened ran under the server's CSP without an error (the
    browser's log since the first page; the API's answers to the bad requests aside)."""
    ui.open("runs")
    wait_for(ui.driver, "table#runs tr.run")
    for route in (f"run/{ui.ids['train'][0]}", "pipelines", "artifacts"):
        ui.go(route)
        wait_for(ui.driver, "#page section")
    logs = [e["message"] for e in ui.driver.get_log("browser") if e["level"] == "SEVERE"]
    expected = ("status of 400 (Bad Request)", "status of 404 (Not Found)")  # a bad --where, a missing run
    bad = [m for m in logs if not ("/api/" in m and "Failed to load resource" in m and m.endswith(expected))]
    assert bad == []


def test_the_page_sources_never_parse_text_as_markup_or_code() -> None:
    """A guard beside the browser test: no script of the page (the vendored files aside)
    hands text to an HTML or JS parser, and index.html has no inline script or handler,
    which the server's CSP would refuse anyway."""
    import re

    static = Path(__file__).resolve().parent.parent / "cmfgit" / "ui" / "static"
    sinks = re.compile(
        r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['\"]"
    )
    scripts = sorted(p for p in static.rglob("*.js") if "vendor" not in p.parts)
    assert len(scripts) >= 10
    for path in scripts:
        code = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        assert not sinks.search(code), path
    html = (static / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert not re.search(r"\son[a-z]+\s*=", html)
    # Every script and stylesheet is a file of this folder (nothing from the network).
    for ref in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert ref == "data:," or (static / ref).is_file() or ref == "./config.js", ref
