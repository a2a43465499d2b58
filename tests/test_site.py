"""`cmfgit site build`: the static site, opened from file:// and from a static server in a
real headless Chromium, answering as the server does (where.js against where.py and the
index's SQL, source-static.js against cmfgit.ui.api)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from browser import chrome, wait_for, wait_until
from conftest import cmfgit, git, make_repo
from recgen import execution

from cmfgit.errors import CmfgitError
from cmfgit.store import Store

STATIC = Path(__file__).resolve().parent.parent / "cmfgit" / "ui" / "static"
PROBE = """<!doctype html><html><head><meta charset="utf-8"><title>probe</title>
<script src="./config.js"></script><script src="./where.js"></script><script src="./source-static.js"></script>
</head><body><p id="ready">ready</p></body></html>
"""


def _special_runs(root: Path) -> list[str]:
    """Runs whose values stress the comparisons: booleans, lists, NaN and infinities, long
    and non-ASCII text, keys that need quoting, lr_2 beside lr_10, ties in start time."""
    store = Store(root / ".cmf" / "objects")
    values: list[dict[str, Any]] = [
        {"params": {"lr_2": 0.5, "flag": True, "opt": "adam", "n": 1}, "metrics": {"acc": 0.9, "loss": 0.1}},
        {"params": {"lr_10": 0.25, "flag": False, "opt": "sgd", "n": 2}, "metrics": {"acc": math.nan}},
        {"params": {"layers": [1, 2], "opt": "Adam", "n": 3.0}, "metrics": {"acc": math.inf, "loss": 2}},
        {"params": {"note": "x" * 300, "größe": "ö", "a b": 1, 'q"k': 2, "n": 10}, "metrics": {"acc": -math.inf}},
        {"params": {"opt": "adamw", "n": -4, "big": 1e20, "tiny": 1.5e-7}, "metrics": {"acc": 0.3}},
        {"params": {"opt": "ädam", "n": "7", "seed": 0}, "metrics": {"acc": 0.9}},
        {"params": {"opt": "\U0001f600", "n": 2.5}, "metrics": {"acc": 0.5}},
    ]
    ids = []
    for i, v in enumerate(values):
        record = execution(100 + i, site="edge" if i % 2 else "lab")
        record["stage"] = ["train", "evaluate", "train", "prepare", "train", "train", "evaluate"][i]
        record["pipeline"] = "wine" if i < 4 else "beer"
        record["started_at"] = f"2026-03-0{1 + i // 2}T10:00:00.000000Z"  # pairs share a start: ties
        record["ended_at"] = f"2026-03-0{1 + i // 2}T10:00:{i:02d}.500000Z"
        record["exit_code"] = 1 if i == 2 else 0
        record["params"] = v["params"]
        record["metrics"] = v["metrics"]
        record["step_metrics"] = {"loss": [[0, 1.0], [1, 0.5 - i / 100]]} if i < 3 else {}
        if not record["step_metrics"]:
            del record["step_metrics"]
        if i in (3, 5):  # an imported dataset known by two hashes (aliases): one artifact in the lineage
            record["inputs"] = [
                {
                    "path": "data/imported.csv",
                    "hash": "blake3:" + "ab" * 32,
                    "aliases": ["md5:" + "cd" * 16],
                    "size": 5,
                    "type": "dataset",
                    "kind": "file",
                    "props": {},
                }
            ]
        ids.append(store.put(record))
    return ids


def make_site_repo(path: Path) -> Path:
    """A repo made with the CLI: a three-stage pipeline with lineage, plus the special runs."""
    root = make_repo(path)
    (root / "raw.csv").write_text("a,b\n1,2\n")
    (root / "prep.py").write_text("open('train.csv', 'w').write('x\\n')\n")
    cmfgit(
        root,
        "log-run",
        "-q",
        "-P",
        "wine",
        "-s",
        "prepare",
        "-i",
        "raw.csv",
        "-o",
        "train.csv",
        "--",
        "python",
        "prep.py",
    )
    (root / "metrics.json").write_text('{"acc": 0.75, "loss": 0.4}')
    (root / "train.py").write_text("open('model.pkl', 'w').write('m\\n')\n")
    cmfgit(
        root, "log-run", "-q", "-P", "wine", "-s", "train", "-p", "lr_2=0.01", "-p", "opt=adam", "-i", "train.csv",
        "-o", "model.pkl", "-m", "metrics.json", "--", "python", "train.py",
    )  # fmt: skip
    (root / "eval.py").write_text("open('report.json', 'w').write('{}')\n")
    cmfgit(
        root, "log-run", "-q", "-P", "wine", "-s", "evaluate", "-i", "model.pkl", "-i", "raw.csv",
        "-o", "report.json", "--", "python", "eval.py",
    )  # fmt: skip
    _special_runs(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "runs")
    first = json.loads(cmfgit(root, "log", "--json", "-n", "1").stdout)[0]["id"]
    cmfgit(root, "tag", first, "status=prod")
    return root


@pytest.fixture
def site_repo(tmp_path: Path) -> Path:
    return make_site_repo(tmp_path / "repo")


def build_probe_site(root: Path, out: Path, **kwargs: Any) -> Path:
    """The site with only this module's probe page (the data side and the two scripts)."""
    from cmfgit.ui import site

    static = out.parent / "probe-static"
    static.mkdir(exist_ok=True)
    for name in ("where.js", "source-static.js"):
        shutil.copy(STATIC / name, static / name)
    (static / "index.html").write_text(PROBE)
    site.build(out, repo=root, static=static, **kwargs)
    return out


class Probe:
    """CMF.source.get in a page of the site, from Python."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        driver.set_script_timeout(60)

    def get(self, endpoint: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.driver.execute_async_script(
            "var done = arguments[2]; CMF.source.get(arguments[0], arguments[1])"
            ".then(function (v) { done({ok: v}); }, function (e) { done({err: e}); });",
            endpoint,
            params or {},
        )
        return result


@contextmanager
def probe_page(site_dir: Path, allow_files: bool = False) -> Iterator[Probe]:
    with chrome(allow_files=allow_files) as driver:
        driver.get((site_dir / "index.html").as_uri())
        wait_for(driver, "#ready")
        yield Probe(driver)


# -- where.js against where.py and CmfQuery's SQL -----------------------------------------------

WHERE_TABLE = [
    'stage == "train"',
    'stage = "train" and pipeline == "wine"',
    'not (stage == "train")',
    'stage in ("train", "prepare")',
    'site != "lab"',
    "exit_code != 0",
    "duration > 2",
    "duration <= 1.5",
    "duration == 0.5",
    "duration >= 1 and duration < 3.5",
    "not duration > 2",
    "duration == null",
    "duration != null",
    "duration in (0.5, 2.5)",
    "duration > '2'",
    "duration ~ '1*'",
    "exit_code == 1.0",
    'pipeline ~ "wi*"',
    'opt_x == 1 or stage == "train"',  # an unknown core field: an error
    'params.opt ~ "[a-b]*"',
    'params.opt ~ "[^a]*"',
    'params.opt ~ "?dam"',
    'params.opt ~ "*"',
    'params.opt > "adam"',
    'params.opt <= "adam"',
    'params.opt < "b"',
    'params.opt >= "ä"',
    'params.opt > "\U0001f5ff"',
    "params.n > 2",
    "params.n >= 2",
    "params.n < 2.5",
    "params.n <= -4",
    "params.n == 3",
    'params.n == "7"',
    "params.n != 1",
    "params.n in (1, 2, 10, 7)",
    'params.n ~ "3*"',
    'params.n ~ "1*"',
    'params.big ~ "1.0e+20"',
    'params.tiny ~ "1.5e-07"',
    "params.flag == true",
    "params.flag == 1",
    "params.flag != true",
    "params.flag == null",
    "params.flag != null",
    "params.layers == null",
    "params.layers != null",
    "not params.layers == null",
    "params.note == null",
    'params["größe"] == "ö"',
    'params["a b"] == 1',
    'params["q\\"k"] == 2',
    "metrics.acc > 0.5",
    "metrics.acc >= 1e308",
    "metrics.acc < -1e308",
    "metrics.acc == null",
    "not metrics.acc > 0.5",
    "metrics.loss == null",
    "metrics.loss != null and metrics.loss < 1",
    'started_at >= "2026-03-02"',
    'time < "2026-03-02"',
    'ended_at > "2026-03-04T10:00:05"',
    'tags.status == "prod"',
    "tags.status != null",
    'id ~ "a*" or id ~ "b*"',
    'stage == "train" and (params.n > 1 or metrics.acc < 0.4)',
    "metrics.acc > 0.5 or not (params.n > 2 and params.opt != 'x')",
    # errors: the message and the caret
    "",
    "   ",
    "stag == 1",
    "paramz.lr > 1",
    "params.lrr > 1",
    "params.lr_3 > 1",
    "metrics.accc > 1",
    "tags.statu == 'x'",
    "params.",
    "stage ==",
    "stage == train",
    "stage == 'train' and",
    "(stage == 'train'",
    "stage == 'train')",
    "stage == 'train' stage",
    "exit_code == 'a'",
    "stage == 1",
    "stage > null",
    "stage in (null)",
    "stage in 'a'",
    "stage in ('a' 'b')",
    "params.n ~ 3",
    "stage == 'a\\qb'",
    "stage == 'unterminated",
    "stage @ 1",
    "größe == 1",
    "params.opt == 'ö' and größe == 1",
    "params[1] == 2",
    "params['x' == 2",
    "not",
    "stage == 'x' or",
    "((((((((((((((((((((((((((((((((stage == 'x'))))))))))))))))))))))))))))))))",
]

SORT_TABLE = [
    None,
    "started_at",
    "-started_at",
    "params.n",
    "-params.n",
    "params.opt",
    "-params.opt",
    "metrics.acc",
    "-metrics.acc",
    "stage",
    "-exit_code",
    "duration",
    "-duration",
    "id",
    "tags.status",
    "params.flag",
    "-params.layers",
    # errors
    "params.nn",
    "-",
    "bogus",
    "metrics.",
]


def _cli_answer(q: Any, where: str | None, sort: str | None) -> dict[str, Any]:
    """What CmfQuery (so `cmfgit log --where --sort`) answers: the ids in order, or the error."""
    from cmfgit.where import WhereError

    try:
        found = q.execution_records(where, sort=sort)
    except WhereError as exc:
        return {"error": str(exc).split("\n")[0], "pos": exc.pos, "text": exc.text}
    except CmfgitError as exc:
        return {"error": str(exc), "pos": None, "text": None}
    return {"ids": [rid for rid, _ in found]}


def _static_answer(probe: Probe, where: str | None, sort: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": 1000, "offset": 0}
    if where is not None:
        params["where"] = where
    if sort is not None:
        params["sort"] = sort
    out = probe.get("runs", params)
    if "err" in out:
        spot = out["err"].get("where")
        return {
            "error": out["err"]["error"],
            "pos": spot["pos"] if spot else None,
            "text": spot["text"] if spot else None,
        }
    return {"ids": [row["id"] for row in out["ok"]["rows"]]}


def test_where_and_sort_answer_as_cmfquery_does(site_repo: Path, tmp_path: Path) -> None:
    from cmfgit.query import CmfQuery

    site_dir = build_probe_site(site_repo, tmp_path / "site")
    with CmfQuery(site_repo, warn=False) as q, probe_page(site_dir) as probe:
        total = len(q.execution_rowids())
        assert total == 10
        mismatches = []
        checked = 0
        for where in WHERE_TABLE:
            want = _cli_answer(q, where, None)
            got = _static_answer(probe, where, None)
            if where.strip() == "":
                # The UI's empty search box means every run (CmfQuery: an error for where="").
                assert got == {"ids": _cli_answer(q, None, None)["ids"]}
                continue
            checked += 1
            if want != got:
                mismatches.append((where, want, got))
        for sort in SORT_TABLE:
            for where in (None, "params.n > 1", 'stage == "train"'):
                want = _cli_answer(q, where, sort)
                got = _static_answer(probe, where, sort)
                checked += 1
                if want != got:
                    mismatches.append((f"{where} / sort {sort}", want, got))
        assert not mismatches, "\n".join(f"{w!r}:\n  sql:    {a}\n  static: {b}" for w, a, b in mismatches)
        assert checked > 100
        # the table exercises both sides: some expressions select runs, some select none, some fail
        answers = [_cli_answer(q, w, None) for w in WHERE_TABLE if w.strip()]
        assert sum(1 for a in answers if "error" in a) > 20
        assert sum(1 for a in answers if a.get("ids")) > 30


def test_cli_where_matches_the_static_site(site_repo: Path, tmp_path: Path) -> None:
    """A few rows of the table through the real CLI: `cmfgit log --where ... --json`."""
    site_dir = build_probe_site(site_repo, tmp_path / "site")
    with probe_page(site_dir) as probe:
        for where, sort in (
            ("params.n >= 2", "-params.n"),
            ('params.opt ~ "*dam*"', None),
            ("metrics.acc == null", "id"),
        ):
            args = ["log", "--json", "--where", where] + (["--sort", sort] if sort else [])
            ids = [obj["id"] for obj in json.loads(cmfgit(site_repo, *args).stdout)]
            assert ids and _static_answer(probe, where, sort) == {"ids": ids}
        proc = cmfgit(site_repo, "log", "--where", "params.n > 1 and params.lr_3 > 1", check=False)
        assert proc.returncode != 0
        got = _static_answer(probe, "params.n > 1 and params.lr_3 > 1", None)
        assert proc.stderr.splitlines()[0] == f"cmfgit: error: {got['error']}"
        assert "did you mean 'params.lr_2'?" in got["error"]
        caret_line = proc.stderr.splitlines()[2]
        assert caret_line.index("^") - 2 == got["pos"] == 17


# -- the payloads against the server's ----------------------------------------------------------


def _api_calls(ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("info", {}),
        ("runs", {}),
        ("runs", {"limit": "3", "offset": "2"}),
        ("runs", {"where": "params.n > 1", "sort": "-params.n", "params": "n,opt", "metrics": "acc"}),
        ("runs", {"where": "params.nope > 1"}),
        ("runs", {"sort": "params.nope"}),
        ("run", {"id": ids[0]}),
        ("run", {"id": ids[3][:8]}),
        ("run", {"id": "zzzz"}),
        ("run", {"id": "0000000"}),
        ("compare", {"ids": ",".join(ids[:3])}),
        ("lineage", {"target": "model.pkl", "dir": "both"}),
        ("lineage", {"target": "report.json", "dir": "up", "depth": "1"}),
        ("lineage", {"target": ids[-1][:10], "dir": "down"}),
        ("lineage", {"target": "nothing.csv"}),
        ("lineage", {"target": "data/imported.csv", "dir": "down"}),
        ("lineage", {"target": "md5:cdcd", "dir": "both"}),
        ("artifact", {"hash": "md5:" + "cd" * 16}),
        ("artifact", {"hash": "data/imported.csv"}),
        ("artifacts", {}),
        ("artifacts", {"type": "dataset"}),
        ("pipelines", {}),
    ]


def test_static_source_answers_every_endpoint_as_the_server(site_repo: Path, tmp_path: Path) -> None:
    """source-static.js gives exactly the JSON of cmfgit.ui.api (the server's), errors too."""
    from cmfgit.query import CmfQuery
    from cmfgit.ui import api

    site_dir = build_probe_site(site_repo, tmp_path / "site")
    ids = [obj["id"] for obj in json.loads(cmfgit(site_repo, "log", "--json").stdout)]
    hashes = [a["hash"] for a in json.loads(cmfgit(site_repo, "artifacts", "--json").stdout)]
    assert len(hashes) >= 4
    calls = (
        _api_calls(ids)
        + [
            ("artifact", {"hash": hashes[0]}),
            ("artifact", {"hash": hashes[-1].split(":")[1][:10]}),
            ("artifact", {"hash": "model.pkl"}),
            ("artifact", {"hash": "ffff0000"}),
            ("lineage", {"target": hashes[1], "dir": "down"}),
            ("lineage", {"target": "@2", "dir": "both", "depth": "0"}),
            ("compare", {"ids": f"{ids[0]},{ids[0][:9]}"}),
            ("compare", {"ids": ids[0]}),
            ("runs", {"offset": "-1"}),
            ("runs", {"limit": "x"}),
            *[("run", {"id": rid}) for rid in ids],  # NaN, infinities, lists, long text...
            ("compare", {"ids": ",".join(ids[3:])}),
            ("runs", {"limit": "5000"}),
            ("runs", {"sort": "params.n", "limit": "4"}),
            ("runs", {"sort": "-metrics.acc", "offset": "3", "limit": "3", "params": "opt,,n,opt,nope"}),
            ("runs", {"where": "stage == 'train'", "params": ""}),
            ("run", {"id": "@1"}),
            ("run", {"id": "train@2"}),
            ("run", {"id": "train@99"}),
            ("artifacts", {"path": "csv"}),
            ("artifacts", {"limit": "2", "offset": "1"}),
            ("artifacts", {"limit": "0"}),
        ]
    )
    mismatches = []
    with CmfQuery(site_repo, warn=False) as q, probe_page(site_dir) as probe:
        for endpoint, params in calls:
            try:
                want = api.call(q, endpoint, params)
            except Exception as exc:  # noqa: BLE001 - the error payload is what the page gets
                want = api.error_payload(exc)[1]
            got = probe.get(endpoint, params)
            answer = got.get("ok", got.get("err"))
            if endpoint == "info":
                answer.pop("generated_at")
                want.pop("generated_at")
            if answer != want:
                mismatches.append((endpoint, params, want, answer))
    assert not mismatches, "\n".join(f"{e} {p}:\n  api:    {w}\n  static: {a}" for e, p, w, a in mismatches)


# -- building ------------------------------------------------------------------------------------


def test_data_files_load_from_file_urls_without_any_flag(site_repo: Path, tmp_path: Path) -> None:
    """A user double-clicking index.html has no --allow-file-access-from-files: scripts still load."""
    site_dir = build_probe_site(site_repo, tmp_path / "site")
    for allow in (False, True):
        with probe_page(site_dir, allow_files=allow) as probe:
            runs = probe.get("runs", {"limit": 2})["ok"]
            assert runs["total"] == 10 and len(runs["rows"]) == 2
            run = probe.get("run", {"id": runs["rows"][0]["id"]})["ok"]
            assert run["run"]["id"] == runs["rows"][0]["id"]
            # and fetch() of a data file is what file:// refuses without the flag
            fetched = probe.driver.execute_async_script(
                "var done = arguments[0]; fetch('data/pipelines.js').then(function () { done('ok'); },"
                " function () { done('refused'); });"
            )
            assert fetched == ("ok" if allow else "refused")


def test_build_replaces_a_site_and_refuses_other_directories(site_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cmfgit(site_repo, "site", "build", str(out), "--json", check=False)
    if proc.returncode != 0 and "web UI's files are missing" in proc.stderr:
        pytest.skip("the front end (h-uifront) is not merged yet")
    report = json.loads(proc.stdout)
    assert report["executions"] == 10 and (out / "index.html").is_file() and (out / "cmfgit-site.json").is_file()
    (out / "data" / "stale.js").write_text("old")
    cmfgit(site_repo, "site", "build", str(out))  # a site: replaced whole
    assert not (out / "data" / "stale.js").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp dirs left
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    proc = cmfgit(site_repo, "site", "build", str(other), check=False)
    assert proc.returncode != 0 and "not empty and not a cmfgit site" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert (other / "notes.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = cmfgit(site_repo, "site", "build", str(afile), check=False)
    assert proc.returncode != 0 and "is not a directory" in proc.stderr and afile.read_text() == "x"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            proc = cmfgit(site_repo, "site", "build", str(locked / "site"), check=False)
            assert proc.returncode != 0 and "permission denied" in proc.stderr
        finally:
            locked.chmod(0o700)
    proc = cmfgit(site_repo, "site", "build", str(tmp_path / "w"), "--where", "params.nope > 1", check=False)
    assert proc.returncode != 0 and "no execution has param 'nope'" in proc.stderr
    assert not (tmp_path / "w").exists()


def test_selection_keeps_only_the_chosen_runs(site_repo: Path, tmp_path: Path) -> None:
    site_dir = build_probe_site(site_repo, tmp_path / "site", where='stage == "train"', pipeline="wine")
    with probe_page(site_dir) as probe:
        runs = probe.get("runs", {})["ok"]
        assert runs["total"] == 3
        assert {(r["pipeline"], r["stage"]) for r in runs["rows"]} == {("wine", "train")}
        info = probe.get("info")["ok"]
        assert info["executions"] == 3 and "train" in info["scope"]


def test_the_site_holds_records_only_no_secrets(site_repo: Path, tmp_path: Path) -> None:
    """The remote URL's password (in .git/config, never in a record) is nowhere in the site;
    the commit link is built from host and path only."""
    git(site_repo, "remote", "add", "origin", "https://alice:s3cr3t-pw@github.com/acme/wine.git")
    site_dir = build_probe_site(site_repo, tmp_path / "site")
    blob = b"".join(p.read_bytes() for p in site_dir.rglob("*") if p.is_file())
    assert b"s3cr3t-pw" not in blob and b"alice" not in blob
    config = json.loads((site_dir / "cmfgit-site.json").read_text())
    assert config["info"]["commit_url"] == "https://github.com/acme/wine/commit/{commit}"
    assert b"[user]" not in blob and b"tests@example.invalid" not in blob  # nothing of git's config


# -- the pages, from file:// (no flag) and from a static server -----------------------------------


@contextmanager
def static_server(root: Path) -> Iterator[str]:
    """A plain static file server on 127.0.0.1 (what GitHub Pages is to the site)."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _texts(driver: Any, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def _ids(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-id") for e in driver.find_elements(By.CSS_SELECTOR, "table#runs tr.run")]


def _browse(driver: Any, base: str, q: Any) -> None:
    """The server tests' flows on the static site: runs, search (and a bad one), sort, a run,
    compare 3 runs, the lineage graph; every check against what CmfQuery/api answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from cmfgit.ui import api

    newest = [rid for rid, _ in q.execution_records()]
    driver.get(base + "#/runs")
    wait_until(driver, lambda d: len(_ids(d)) == 10)
    assert _ids(driver) == newest
    assert "10" in wait_for(driver, "#runs-total").text
    failed = [e.get_attribute("data-id") for e in driver.find_elements(By.CSS_SELECTOR, "tr.run.failed")]
    assert failed == [rid for rid, r in q.execution_records() if r.get("exit_code") not in (0, None)]
    # search
    box = wait_for(driver, "input#where")
    box.clear()
    box.send_keys("params.n >= 1 and stage == 'train'", Keys.ENTER)
    want = [rid for rid, _ in q.execution_records("params.n >= 1 and stage == 'train'")]
    assert len(want) == 2
    wait_until(driver, lambda d: _ids(d) == want)
    # a bad search: the message and the caret under the spot
    box = wait_for(driver, "input#where")
    box.clear()
    box.send_keys("params.n >= 2 and params.lr_3 > 1", Keys.ENTER)
    error = wait_for(driver, "#where-error")
    wait_until(driver, lambda d: "no execution has param 'lr_3'" in error.text)
    assert "did you mean 'params.lr_2'?" in error.text
    caret = wait_for(driver, "#where-error pre.caret").text.splitlines()
    assert caret[0].strip() == "params.n >= 2 and params.lr_3 > 1"
    assert caret[1].index("^") - caret[0].index("p") == 18
    # sort by a column: ascending, then descending
    driver.get(base + "#/runs?sort=")
    wait_until(driver, lambda d: len(_ids(d)) == 10)
    wait_for(driver, 'th[data-sort="stage"]').click()
    wait_until(driver, lambda d: _ids(d) == [rid for rid, _ in q.execution_records(sort="stage")])
    wait_for(driver, 'th[data-sort="stage"]').click()
    wait_until(driver, lambda d: _ids(d) == [rid for rid, _ in q.execution_records(sort="-stage")])
    # open a run
    target = newest[0]
    driver.get(base + "#/runs")
    wait_until(driver, lambda d: len(_ids(d)) == 10)
    driver.find_element(By.CSS_SELECTOR, f'tr.run[data-id="{target}"] a').click()
    assert wait_for(driver, "#run").get_attribute("data-id") == target
    wait_for(driver, "table#inputs")
    assert "report.json" in wait_for(driver, "table#outputs").text
    # compare 3 runs
    driver.get(base + "#/runs")
    wait_until(driver, lambda d: len(_ids(d)) == 10)
    trio = [rid for rid, r in q.execution_records('stage == "train"')][:3]
    for rid in trio:
        driver.find_element(By.CSS_SELECTOR, f'input.pick[value="{rid}"]').click()
    wait_for(driver, "button#compare").click()
    wait_for(driver, "table#compare")
    table = api.compare_runs(q, ids=trio)
    changed = {f"params.{r['key']}" for r in table["params"] if r["changed"]}
    wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-key="params.n"]'))
    shown = {e.get_attribute("data-key") for e in driver.find_elements(By.CSS_SELECTOR, "tr.changed")}
    assert changed and changed <= shown
    # the lineage graph
    lineage = api.lineage(q, target="model.pkl", dir="both")
    driver.get(base + "#/lineage/model.pkl?dir=both")
    graph = wait_for(driver, "#graph[data-nodes]", timeout=60)
    assert int(graph.get_attribute("data-nodes")) == len(lineage["nodes"]) >= 5
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e["message"]]
    assert not errors, errors


def test_the_pages_from_file_urls_and_a_static_server(site_repo: Path, tmp_path: Path) -> None:
    from cmfgit.query import CmfQuery

    out = tmp_path / "site"
    proc = cmfgit(site_repo, "site", "build", str(out), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "10 execution(s)" in proc.stdout
    with CmfQuery(site_repo, warn=False) as q:
        with chrome() as driver:  # no --allow-file-access-from-files: as a user double-clicking it
            _browse(driver, (out / "index.html").as_uri(), q)
            with static_server(out) as url:
                _browse(driver, url, q)


def test_the_parallel_build_writes_the_same_files(
    site_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL_MIN, forked workers write the run files and a forked process the graph,
    the events and the core columns: every file is the one a build in one process writes."""
    from cmfgit.ui import site

    serial = site.build(tmp_path / "serial", repo=site_repo)
    monkeypatch.setattr(site, "PARALLEL_MIN", 0)
    monkeypatch.setattr(site, "PARSE_BATCH", 1)  # one task per id prefix
    monkeypatch.setenv("CMFGIT_INDEX_JOBS", "2")
    parallel = site.build(tmp_path / "parallel", repo=site_repo)
    assert (parallel.runs, parallel.files, parallel.bytes) == (serial.runs, serial.files, serial.bytes)
    names = sorted(p.relative_to(serial.path) for p in serial.path.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(parallel.path) for p in parallel.path.rglob("*") if p.is_file())
    assert any(str(n).startswith("data/run-") for n in names)
    for name in names:
        a, b = (serial.path / name).read_text(), (parallel.path / name).read_text()
        if name.name in ("config.js", site.MARKER):  # the build's time differs
            a, b = (re.sub(r'"generated_at": "[^"]*"', "", t) for t in (a, b))
        assert a == b, name
