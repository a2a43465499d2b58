"""The Python API: ``with cmfgit.run(...) as run:``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from conftest import git

import cmfgit
from cmfgit import gitstate, reading
from cmfgit.errors import UsageError
from cmfgit.repo import find_repo


def b3(data: bytes) -> str:
    return "blake3:" + blake3(data).hexdigest()


def record(repo: Path, rid: str | None) -> dict[str, Any]:
    assert rid is not None
    found_id, rec = reading.show(find_repo(repo), rid)
    assert found_id == rid
    return rec


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def test_run_logs_everything(in_repo: Path) -> None:
    (in_repo / "data").mkdir()
    (in_repo / "data" / "train.csv").write_bytes(b"x,y\n1,2\n")
    with cmfgit.run(pipeline="wine", stage="train", params={"lr": 0.01, "opt": {"name": "adam"}}) as run:
        assert (run.pipeline, run.stage) == ("wine", "train")
        assert run.log_input("data/train.csv") == b3(b"x,y\n1,2\n")
        run.log_param("epochs", 3)
        run.log_params({"sched": {"gamma": 0.5}})
        run.log_output("model.pkl", type="model", framework="sklearn", layers=[3, 2])
        # Outputs are hashed when the run ends: written after log_output is fine.
        (in_repo / "model.pkl").write_bytes(b"weights v1")
        run.log_metrics({"rmse": 0.71, "eval": {"r2": 0.5}})
        for step, loss in enumerate([1.0, 0.5, 0.25]):
            run.log_metric("loss", loss, step=step)
        run.log_metric("lr_now", 1e-05)
        assert run.id is None
    rec = record(in_repo, run.id)
    assert (rec["pipeline"], rec["stage"], rec["type"]) == ("wine", "train", "train")
    assert rec["params"] == {"lr": 0.01, "opt.name": "adam", "epochs": 3, "sched.gamma": 0.5}
    assert rec["exit_code"] == 0 and "error" not in rec
    assert rec["inputs"] == [
        {
            "path": "data/train.csv",
            "hash": b3(b"x,y\n1,2\n"),
            "size": 8,
            "type": "dataset",
            "kind": "file",
            "props": {},
        }
    ]
    (out,) = rec["outputs"]
    assert out["hash"] == b3(b"weights v1")
    assert (out["type"], out["kind"], out["props"]) == ("model", "file", {"framework": "sklearn", "layers": [3, 2]})
    assert rec["metrics"] == {"rmse": 0.71, "eval.r2": 0.5, "loss": 0.25, "lr_now": 1e-05}
    assert rec["step_metrics"] == {"loss": [[0, 1.0], [1, 0.5], [2, 0.25]], "lr_now": [[None, 1e-05]]}
    assert rec["git"]["commit"] == git(in_repo, "rev-parse", "HEAD").strip()
    assert rec["env"]["executable"]


def test_exception_in_the_block_records_a_failed_run_and_reraises(in_repo: Path) -> None:
    with pytest.raises(ValueError, match="diverged"):
        with cmfgit.run(stage="train", params={"lr": 10.0}) as run:
            run.log_output("never.pt")
            run.log_metric("loss", float("nan"), step=0)
            raise ValueError("loss diverged")
    rec = record(in_repo, run.id)
    assert rec["exit_code"] == 1
    assert rec["error"] == "ValueError: loss diverged"
    assert rec["outputs"][0]["kind"] == "missing"
    assert rec["metrics"]["loss"] != rec["metrics"]["loss"]  # nan survives the round trip

    with pytest.raises(KeyboardInterrupt):
        with cmfgit.run(stage="train") as interrupted:
            raise KeyboardInterrupt
    assert record(in_repo, interrupted.id)["exit_code"] == 130

    # sys.exit inside the block keeps its status, as the shell would see it.
    for status, code in ((0, 0), (None, 0), (3, 3), ("bad config", 1)):
        with pytest.raises(SystemExit):
            with cmfgit.run(stage="exits") as exiting:
                raise SystemExit(status)
        rec = record(in_repo, exiting.id)
        assert rec["exit_code"] == code
        assert ("error" in rec) == (code != 0)


def test_directory_output_and_repo_argument(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the API works from anywhere given repo=
    with cmfgit.run(stage="export", repo=repo, command=["export.py", "--fast"]) as run:
        out = repo / "export"
        out.mkdir()
        (out / "a.bin").write_bytes(b"a")
        (out / "b.bin").write_bytes(b"bb")
        run.log_output(out, type="dataset")
    rec = record(repo, run.id)
    assert rec["command"] == ["export.py", "--fast"]
    (art,) = rec["outputs"]
    assert (art["path"], art["kind"], art["size"], art["props"]) == ("export", "dir", 3, {"files": 2})


def test_bad_arguments_raise_usage_errors(in_repo: Path) -> None:
    with pytest.raises(UsageError):
        with cmfgit.run(stage="s") as run:
            run.log_metric("acc", "high")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        with cmfgit.run(stage="s") as run:
            run.log_output("x.bin", type="Not A Type")
    assert record(in_repo, run.id)["exit_code"] == 1


def test_a_sweep_sees_commits_and_edits_between_runs(in_repo: Path) -> None:
    """Reusing the git state in a sweep must not record a stale code version."""
    with cmfgit.run(stage="sweep") as first:
        pass
    (in_repo / "model.py").write_text("v = 1\n")
    git(in_repo, "add", "model.py")
    git(in_repo, "commit", "-q", "-m", "model v1")
    with cmfgit.run(stage="sweep") as second:
        pass
    a, b = record(in_repo, first.id)["git"], record(in_repo, second.id)["git"]
    assert b["commit"] == git(in_repo, "rev-parse", "HEAD").strip() != a["commit"]

    # A commit that does not touch the index (git reset --soft) is seen too.
    git(in_repo, "reset", "-q", "--soft", "HEAD~1")
    git(in_repo, "commit", "-q", "-m", "model v1 again")
    with cmfgit.run(stage="sweep") as third:
        pass
    assert record(in_repo, third.id)["git"]["commit"] == git(in_repo, "rev-parse", "HEAD").strip()

    # An edit of a tracked file changes nothing git keeps a stamp of; it is
    # seen once the snapshot is older than REUSE_SECONDS.
    time.sleep(gitstate.REUSE_SECONDS)
    (in_repo / "model.py").write_text("v = 2\n")
    with cmfgit.run(stage="sweep") as fourth:
        pass
    edited = record(in_repo, fourth.id)["git"]
    assert edited["dirty"] is True
    assert edited["tree"] != record(in_repo, third.id)["git"]["tree"]


def test_values_are_made_recordable_or_refused_at_once(in_repo: Path) -> None:
    import datetime
    import decimal
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    params = {
        "path": Path("data/x.csv"),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "day": datetime.date(2026, 1, 2),
        "rate": decimal.Decimal("0.5"),
        "tags": {"b", "a"},
        "shape": (3, 4),
        "color": Color.RED,
        "level": Level.HIGH,
        "nested": {"opt": {"name": Path("adam")}},
    }
    with cmfgit.run(stage="s", params=params) as run:
        run.log_param("late", Path("y"))
        run.log_metric("loss", 0.5, step=2)
    assert record(in_repo, run.id)["params"] == {
        "path": "data/x.csv",
        "when": "2026-01-02T03:04:05",
        "day": "2026-01-02",
        "rate": 0.5,
        "tags": ["a", "b"],
        "shape": [3, 4],
        "color": "red",
        "level": 3,
        "nested.opt.name": "adam",
        "late": "y",
    }
    before = {rid for rid, _ in reading.executions(find_repo(in_repo))}
    for bad, says in [
        ({"blob": b"bytes"}, "param 'blob': a value of type bytes cannot be recorded"),
        ({"f": len}, "param 'f': a value of type builtin_function_or_method cannot be recorded"),
        ("lr=0.1", "params must be a mapping, not str"),
    ]:
        with pytest.raises(UsageError, match=says):
            cmfgit.run(stage="s", params=bad)  # type: ignore[arg-type]
    assert {
        rid for rid, _ in reading.executions(find_repo(in_repo))
    } == before  # refused before the run: nothing written
    with pytest.raises(UsageError, match="step must be an integer or None"):
        with cmfgit.run(stage="s") as run:
            run.log_metric("loss", 1.0, step="s")  # type: ignore[arg-type]
    assert record(in_repo, run.id)["exit_code"] == 1  # the failure is recorded, the run is not lost
