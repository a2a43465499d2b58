"""``cmfgit import dvc``: a DVC project that the real ``dvc`` ran (3 stages, 3 commits) becomes lineage."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from conftest import cmfgit, git
from test_data_dvc import DVC, dvc

pytestmark = pytest.mark.skipif(DVC is None, reason="dvc is not installed (pip install dvc, or set CMFGIT_TEST_DVC)")

PREPARE = "import sys\nopen('prepared.csv', 'w').write(open('raw.csv').read().upper())\n"
TRAIN = (
    "import yaml\nlr = yaml.safe_load(open('params.yaml'))['train']['lr']\n"
    "open('model.pkl', 'w').write(f'model lr={lr} ' + open('prepared.csv').read())\n"
)
EVALUATE = "import json\njson.dump({'size': len(open('model.pkl').read())}, open('metrics.json', 'w'))\n"


def _md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def dvc_project(repo: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Three commits of a three-stage DVC pipeline; (the commits, md5s of raw.csv and model.pkl by commit)."""
    dvc(repo, "init", "-q")
    py = sys.executable
    (repo / "prepare.py").write_text(PREPARE)
    (repo / "train.py").write_text(TRAIN)
    (repo / "evaluate.py").write_text(EVALUATE)
    (repo / "raw.csv").write_text("a,b\n1,2\n")
    (repo / "params.yaml").write_text("train:\n  lr: 0.1\n")
    dvc(repo, "add", "-q", "raw.csv")
    dvc(repo, "stage", "add", "-q", "-n", "prepare", "-d", "raw.csv", "-d", "prepare.py", "-o", "prepared.csv",
        f"{py} prepare.py")  # fmt: skip
    dvc(repo, "stage", "add", "-q", "-n", "train", "-d", "prepared.csv", "-d", "train.py", "-p", "train.lr",
        "-o", "model.pkl", f"{py} train.py")  # fmt: skip
    dvc(repo, "stage", "add", "-q", "-n", "evaluate", "-d", "model.pkl", "-d", "evaluate.py", "-M", "metrics.json",
        f"{py} evaluate.py")  # fmt: skip
    commits, seen = [], {"raw": [], "model": []}
    for step in range(3):
        if step == 1:
            (repo / "params.yaml").write_text("train:\n  lr: 0.05\n")  # train and evaluate run again
        if step == 2:
            (repo / "raw.csv").write_text("a,b\n1,2\n3,4\n")  # all three run again
            dvc(repo, "add", "-q", "raw.csv")
        dvc(repo, "repro", "-q")
        commits.append(_commit(repo, f"dvc repro {step}"))
        seen["raw"].append(_md5(repo / "raw.csv"))
        seen["model"].append(_md5(repo / "model.pkl"))
    return commits, seen


def _log(repo: Path) -> list[dict]:
    out = cmfgit(repo, "log", "--json", "-n", "1000").stdout
    return json.loads(out)


def test_a_dvc_projects_history_becomes_lineage(repo: Path) -> None:
    commits, seen = dvc_project(repo)
    out = cmfgit(repo, "import", "dvc", "--all-commits").stdout
    assert "3 commit(s)" in out and "8 execution(s)" in out and "8 new" in out, out
    runs = _log(repo)
    by = sorted((r["git"]["commit"], r["stage"]) for r in runs)
    assert len(runs) == 8, runs
    # one execution per (commit, stage) whose lock entry changed: commit 2 changed only train's param
    stages_at = {c: sorted(s for cc, s in by if cc == c) for c in commits}
    assert stages_at == {
        commits[0]: ["evaluate", "prepare", "train"],
        commits[1]: ["evaluate", "train"],
        commits[2]: ["evaluate", "prepare", "train"],
    }, by

    # the final model (in the working tree and DVC's cache): blake3 with its md5 as alias, back to raw.csv
    lineage = json.loads(cmfgit(repo, "lineage", "model.pkl", "--json").stdout)
    nodes = {n["id"]: n for n in lineage["nodes"]}
    root = nodes[lineage["roots"][0]]
    assert root["hash"].startswith("blake3:") and seen["model"][2] in root["aliases"]
    stages = sorted(n["stage"] for n in nodes.values() if n["kind"] == "execution")
    assert stages == ["prepare", "train"]
    raw = [n for n in nodes.values() if n["kind"] == "artifact" and "raw.csv" in n["paths"]]
    assert len(raw) == 1 and seen["raw"][2] in raw[0]["aliases"] + [raw[0]["hash"]]
    # an old model (its bytes only in DVC's cache) goes back to the first raw.csv
    old = json.loads(cmfgit(repo, "lineage", seen["model"][0], "--json").stdout)
    old_raw = [n for n in old["nodes"] if n["kind"] == "artifact" and "raw.csv" in n["paths"]]
    assert [seen["raw"][0] in n["aliases"] + [n["hash"]] for n in old_raw] == [True]

    # train's runs: its cmd and the param of each commit
    train = sorted((r for r in runs if r["stage"] == "train"), key=lambda r: commits.index(r["git"]["commit"]))
    assert [r["params"] for r in train] == [{"train.lr": 0.1}, {"train.lr": 0.05}, {"train.lr": 0.05}]
    assert {tuple(r["command"]) for r in train} == {(sys.executable, "train.py")}
    assert {json.dumps(r["source"], sort_keys=True) for r in train} == {
        json.dumps({"dvc": {"lock": "dvc.lock", "commit": r["git"]["commit"], "stage": "train"}}, sort_keys=True)
        for r in train
    }
    assert {r["pipeline"] for r in runs} == {"repo"}
    evaluate = sorted((r for r in runs if r["stage"] == "evaluate"), key=lambda r: commits.index(r["git"]["commit"]))
    sizes = [len(git(repo, "show", f"{c}:model.pkl", check=False)) for c in commits]  # model.pkl is DVC's, not git's
    assert [r["metrics"] for r in evaluate] == [
        json.loads(git(repo, "show", f"{c}:metrics.json")) for c in commits
    ] and sizes == [0, 0, 0]
    assert evaluate[0]["metrics"]["size"] < evaluate[2]["metrics"]["size"]

    # idempotent: again (with or without --all-commits) nothing is new
    again = cmfgit(repo, "import", "dvc", "--all-commits", "--json").stdout
    report = json.loads(again)
    assert (report["written"], report["present"], report["executions"]) == (0, 8, 8)
    head = json.loads(cmfgit(repo, "import", "dvc", "--json").stdout)
    assert (head["written"], head["present"], head["kept"], head["executions"]) == (0, 3, 0, 3)  # the same bytes
    assert len(_log(repo)) == 8


def test_malformed_lock_and_not_a_dvc_project(repo: Path) -> None:
    bad = cmfgit(repo, "import", "dvc", check=False)
    assert bad.returncode != 0 and "not a DVC project" in bad.stderr and "Traceback" not in bad.stderr
    (repo / ".dvc").mkdir()
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages:\n  train: [unclosed\n")
    _commit(repo, "a broken lock")
    bad = cmfgit(repo, "import", "dvc", check=False)
    assert bad.returncode != 0 and "dvc.lock" in bad.stderr and "not valid YAML" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert _log(repo) == []


def test_a_file_named_dvc_is_cmf_metadata_when_written_as_a_path(repo: Path) -> None:
    (repo / "dvc").write_text("not json\n")
    bad = cmfgit(repo, "import", "./dvc", check=False)
    assert bad.returncode != 0 and "neither an MLMD SQLite file nor a CMF export JSON" in bad.stderr
    mixed = cmfgit(repo, "import", "./dvc", "--all-commits", check=False)
    assert mixed.returncode != 0 and "--all-commits goes with 'cmfgit import dvc'" in mixed.stderr


def test_a_project_in_a_subdirectory_from_head_only(repo: Path) -> None:
    sub = repo / "proj"
    sub.mkdir()
    dvc(sub, "init", "-q", "--subdir")
    (sub / "raw.txt").write_text("raw\n")
    dvc(sub, "stage", "add", "-q", "-n", "copy", "-d", "raw.txt", "-o", "copy.txt", "cp raw.txt copy.txt")
    dvc(sub, "repro", "-q")
    first = _commit(repo, "copy")
    (sub / "other.txt").write_text("unrelated\n")
    _commit(repo, "a commit that leaves dvc.lock alone")
    report = json.loads(cmfgit(repo, "import", "dvc", "proj", "-P", "sub", "--json").stdout)
    assert (report["commits"], report["executions"], report["written"]) == (1, 1, 1)
    (run,) = _log(repo)
    assert (run["pipeline"], run["stage"], run["git"]["commit"], run["command"]) == (
        "sub", "copy", first, ["cp", "raw.txt", "copy.txt"],
    )  # fmt: skip
    assert run["source"]["dvc"]["lock"] == "proj/dvc.lock"
    assert [(a["path"], a["aliases"]) for a in run["inputs"]] == [("raw.txt", [_md5(sub / "raw.txt")])]
    assert run["outputs"][0]["hash"].startswith("blake3:")
