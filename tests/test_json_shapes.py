"""The JSON shapes of the read commands (docs/json.md), locked by exact key sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import ROOT, cmfgit
from qhelp import art, execution, h, put, ts

EXECUTION_KEYS = {
    "id",
    "schema",
    "uuid",
    "pipeline",
    "stage",
    "type",
    "command",
    "params",
    "started_at",
    "ended_at",
    "exit_code",
    "site",
    "host",
    "user",
    "git",
    "env",
    "inputs",
    "outputs",
    "metrics",
    "tags",
    "metadata_commit",
}
ARTIFACT_ITEM_KEYS = {"path", "hash", "size", "type", "kind", "props"}
GIT_KEYS = {"commit", "branch", "dirty", "remote", "tree"}
EXEC_NODE_KEYS = {"id", "kind", "level", "pipeline", "stage", "started_at", "exit_code", "site", "metadata_commit"}
ART_NODE_KEYS = {"id", "kind", "level", "hash", "aliases", "paths", "type"}
EDGE_KEYS = {"source", "target", "event"}
ARTIFACT_KEYS = {
    "hash",
    "aliases",
    "type",
    "kind",
    "size",
    "paths",
    "pipelines",
    "producers",
    "consumers",
    "first_seen",
    "last_seen",
    "tags",
}
PIPELINE_KEYS = {"pipeline", "executions", "failed", "last_run", "stages"}
STAGE_KEYS = {"stage", "executions", "failed", "last_run"}
SIDE_KEYS = {"id", "pipeline", "stage", "started_at", "exit_code", "site"}


def run(root: Path, *args: str) -> Any:
    return json.loads(cmfgit(root, *args).stdout)


def test_log_and_show_shapes_from_a_real_run(repo: Path) -> None:
    (repo / "in.csv").write_text("a,b\n1,2\n")
    cmfgit(
        repo,
        "log-run",
        "-P",
        "wine",
        "-s",
        "train",
        "-i",
        "in.csv",
        "-o",
        "model.pkl",
        "-p",
        "lr=0.1",
        "--",
        "sh",
        "-c",
        "cp in.csv model.pkl",
    )
    (log,) = run(repo, "log", "--json")
    assert set(log) == EXECUTION_KEYS | {"cwd"}
    assert set(log["git"]) == GIT_KEYS | {"untracked_skipped"}  # in.csv was untracked, so not in the snapshot
    assert log["git"]["untracked_skipped"] == 1
    assert {"python", "platform"} <= set(log["env"]) <= {"python", "platform", "packages", "vars", "executable"}
    for item in log["inputs"] + log["outputs"]:
        assert set(item) == ARTIFACT_ITEM_KEYS
        assert item["hash"].startswith("blake3:") and len(item["hash"]) == 71
    assert run(repo, "show", log["id"][:8], "--json") == log
    assert run(repo, "log", "--json", "--where", "params.lr == 0.1", "--sort", "-started_at") == [log]


def test_query_command_shapes(repo: Path) -> None:
    a, b = put(
        repo,
        execution("prep", [art("raw")], [art("clean")], params={"k": 1}, metrics={"rows": 10}, started_at=ts(1)),
        execution(
            "train",
            [art("clean")],
            [art("model", "model")],
            params={"lr": 0.1},
            metrics={"acc": float("nan")},
            started_at=ts(2),
        ),
    )
    lineage = run(repo, "lineage", h("model"), "--json")
    assert set(lineage) == {"roots", "direction", "depth", "nodes", "edges"}
    kinds = {n["kind"] for n in lineage["nodes"]}
    assert kinds == {"execution", "artifact"}
    for node in lineage["nodes"]:
        assert set(node) == (EXEC_NODE_KEYS if node["kind"] == "execution" else ART_NODE_KEYS)
    assert all(set(e) == EDGE_KEYS for e in lineage["edges"]) and len(lineage["edges"]) == 4

    artifacts = run(repo, "artifacts", "--json")
    assert len(artifacts) == 3 and all(set(x) == ARTIFACT_KEYS for x in artifacts)
    clean = next(x for x in artifacts if x["hash"] == h("clean"))
    assert clean["producers"] == [a] and clean["consumers"] == [b] and clean["paths"] == ["data/clean"]
    assert [x["hash"] for x in run(repo, "artifacts", "--json", "--type", "model")] == [h("model")]

    (pipeline,) = run(repo, "pipelines", "--json")
    assert set(pipeline) == PIPELINE_KEYS and pipeline["executions"] == 2
    assert [set(s) for s in pipeline["stages"]] == [STAGE_KEYS, STAGE_KEYS]

    diff = run(repo, "diff", a[:8], b[:8], "--json")
    assert set(diff) == {"a", "b", "code", "params", "metrics", "inputs", "outputs"}
    assert set(diff["a"]) == set(diff["b"]) == SIDE_KEYS
    assert set(diff["code"]) == {"a", "b", "changed"} and set(diff["code"]["a"]) == {"commit", "dirty", "tree"}
    assert [set(r) for r in diff["params"]] == [{"key", "a", "b", "changed"}] * 2
    assert {r["key"]: (r["a"], r["b"]) for r in diff["params"]} == {"k": (1, None), "lr": (None, 0.1)}
    assert {r["key"]: r["b"] for r in diff["metrics"]} == {"acc": "NaN", "rows": None}
    assert all(set(r) == {"path", "a", "b", "changed"} for r in diff["inputs"] + diff["outputs"])


def test_shapes_are_documented() -> None:
    doc = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    for key in EXECUTION_KEYS | EXEC_NODE_KEYS | ART_NODE_KEYS | EDGE_KEYS | ARTIFACT_KEYS | PIPELINE_KEYS | STAGE_KEYS:
        assert f"`{key}`" in doc or f'"{key}"' in doc, key
