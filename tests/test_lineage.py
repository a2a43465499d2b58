"""Lineage through the index (recursive CTEs) and the `cmfgit lineage` command, on known graphs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import cmfgit, make_repo
from qhelp import art, execution, h, put, ts

from cmfgit.graph import Graph, Node
from cmfgit.query import CmfQuery
from cmfgit.store import Store

MD5 = "md5:" + "5d" * 16


def graphs() -> dict[str, dict[str, Any]]:
    """name -> execution record, several known shapes in one store."""
    g: dict[str, dict[str, Any]] = {}
    # An artifact consumed by two stages.
    g["prep"] = execution("prep", [art("raw")], [art("clean")], started_at=ts(1))
    g["train"] = execution("train", [art("clean")], [art("model", "model", "models/model.pkl")], started_at=ts(2))
    g["stats"] = execution("stats", [art("clean")], [art("report", "metrics")], started_at=ts(3))
    # A diamond.
    g["split"] = execution("split", [art("d-raw")], [art("d-left"), art("d-right")], pipeline="dia", started_at=ts(10))
    g["l"] = execution("l", [art("d-left")], [art("d-lf")], pipeline="dia", started_at=ts(11))
    g["r"] = execution("r", [art("d-right")], [art("d-rf")], pipeline="dia", started_at=ts(12))
    g["join"] = execution("join", [art("d-lf"), art("d-rf")], [art("d-out")], pipeline="dia", started_at=ts(13))
    # A chain 50 stages deep.
    for i in range(50):
        g[f"c{i}"] = execution(
            f"c{i}", [art(f"c-a{i}")], [art(f"c-a{i + 1}")], pipeline="chain", started_at=ts(100 + i)
        )
    # An execution whose output has the same hash as its input.
    g["make"] = execution("make", [art("s-src")], [art("s-data")], pipeline="same", started_at=ts(200))
    g["copy"] = execution(
        "copy", [art("s-data")], [art("s-data", path="data/copy")], pipeline="same", started_at=ts(201)
    )
    g["use"] = execution("use", [art("s-data")], [art("s-model", "model")], pipeline="same", started_at=ts(202))
    # CMF interop: an imported run knows only the md5; a native run declares it as an alias.
    imported = art("x-ignored", path="artifacts/prepared/train.csv")
    imported.update(hash=MD5, kind="external", size=None)
    g["cmf-prepare"] = execution("prepare", [art("cmf-raw")], [imported], pipeline="cmf", started_at=ts(300))
    g["cmf-train"] = execution(
        "train",
        [art("cmf-train-csv", path="artifacts/prepared/train.csv", aliases=[MD5])],
        [art("cmf-model", "model")],
        pipeline="cmf",
        started_at=ts(301),
    )
    return g


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_repo(tmp_path_factory.mktemp("lineage") / "repo")
    g = graphs()
    ids = dict(zip(g, put(root, *g.values())))
    q = CmfQuery(root)
    full = Graph.build((s.id, s.load()) for s in Store(root / ".cmf/objects").iter_records())
    yield root, q, ids, full
    q.close()


def A(name: str) -> Node:
    return Node("artifact", h(name))


def test_known_graphs_through_the_index(world: Any) -> None:
    _root, q, ids, full = world
    E = {name: Node("execution", rid) for name, rid in ids.items()}
    cases = [
        (A("clean"), "down", None, {"train", "stats"}),
        (A("model"), "up", None, {"train", "prep"}),
        (A("clean"), "both", None, {"prep", "train", "stats"}),
        (A("d-out"), "up", None, {"split", "l", "r", "join"}),
        (A("d-raw"), "down", None, {"split", "l", "r", "join"}),
        (A("d-out"), "up", 1, {"join"}),
        (A("c-a50"), "up", None, {f"c{i}" for i in range(50)}),
        (A("c-a50"), "up", 7, {f"c{i}" for i in range(43, 50)}),
        (E["c0"], "down", None, {f"c{i}" for i in range(50)}),
        (A("s-model"), "up", None, {"make", "copy", "use"}),
        (A("s-src"), "down", None, {"make", "copy", "use"}),
        (E["copy"], "both", None, {"make", "copy", "use"}),
        (Node("artifact", MD5), "up", None, {"cmf-prepare"}),
        (Node("artifact", MD5), "down", None, {"cmf-train"}),
    ]
    for root, direction, depth, names in cases:
        lineage, _graph = q.lineage([root], direction, depth)
        assert lineage.executions() == {ids[n] for n in names}, (root, direction, depth)
        # Exactly what the pure graph says over a full scan of the records.
        expected = full.lineage(root, direction, depth)
        assert lineage.levels == expected.levels and lineage.edges == expected.edges
    chain, _ = q.lineage([A("c-a50")], "up", None)
    assert len(chain.edges) == 100 and chain.levels[A("c-a0")] == 50


def test_cli_formats(world: Any) -> None:
    root, _q, ids, _full = world
    (root / "data").mkdir(exist_ok=True)
    (root / "data/clean").write_text("clean")  # the content hashed is the content recorded
    out = json.loads(cmfgit(root, "lineage", "data/clean", "--down", "--format", "json").stdout)
    assert set(out) == {"roots", "direction", "depth", "nodes", "edges"}
    assert out["roots"] == [h("clean")] and out["direction"] == "down"
    arts = [n for n in out["nodes"] if n["kind"] == "artifact"]
    assert {n["hash"] for n in arts} == {h("clean"), h("model"), h("report")}
    assert all(n["hash"].startswith("blake3:") and len(n["hash"]) == 71 for n in arts)
    assert {n["id"] for n in out["nodes"] if n["kind"] == "execution"} == {ids["train"], ids["stats"]}
    assert {(e["source"], e["target"], e["event"]) for e in out["edges"]} == {
        (h("clean"), ids["train"], "input"),
        (h("clean"), ids["stats"], "input"),
        (ids["train"], h("model"), "output"),
        (ids["stats"], h("report"), "output"),
    }
    mermaid = cmfgit(root, "lineage", "data/clean", "--both", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n")
    assert mermaid.count(" --> ") == 6  # raw->prep->clean->train/stats->model/report
    dot = cmfgit(root, "lineage", ids["use"][:10], "--up", "--format", "dot").stdout
    assert (
        dot.startswith("digraph lineage {") and dot.count(" -> ") == 5
    )  # src->make->data, data->copy->data (both ways), data->use
    tree = cmfgit(root, "lineage", "models/model.pkl").stdout
    assert "(target)" in tree and "p/train" in tree and "p/prep" in tree and "data/raw" in tree
    chain = cmfgit(root, "lineage", h("c-a50"), "--format", "json", "--depth", "3").stdout
    assert len([n for n in json.loads(chain)["nodes"] if n["kind"] == "execution"]) == 3


def test_cmf_identity_as_target(world: Any) -> None:
    root, _q, ids, _full = world
    out = json.loads(cmfgit(root, "lineage", MD5, "--both", "--json").stdout)
    assert out["roots"] == [h("cmf-train-csv")]  # the blake3 name of the same bytes
    node = next(n for n in out["nodes"] if n["id"] == h("cmf-train-csv"))
    assert node["aliases"] == [MD5] and node["hash"].startswith("blake3:")
    assert {n["id"] for n in out["nodes"] if n["kind"] == "execution"} == {ids["cmf-prepare"], ids["cmf-train"]}
    short = json.loads(cmfgit(root, "lineage", MD5[:12], "--json").stdout)
    assert short["roots"] == out["roots"]


def test_bad_targets(world: Any) -> None:
    root, _q, _ids, _full = world
    for target, words in [
        ("blake3:ffff0000", "no artifact matches"),
        ("no/such/file.csv", "no artifact, path or execution matches"),
        ("README.md", "no execution recorded this file"),
    ]:
        proc = cmfgit(root, "lineage", target, check=False)
        assert proc.returncode == 1, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
    proc = cmfgit(root, "lineage", h("clean"), "--up", "--down", check=False)
    assert proc.returncode == 2 and "choose one of --up, --down, --both" in proc.stderr
    proc = cmfgit(root, "lineage", h("clean"), "--format", "png", check=False)
    assert proc.returncode == 2 and "--format must be one of" in proc.stderr


def test_tree_expands_a_node_where_it_first_appears(world: Any) -> None:
    """In the diamond, d-raw is reached twice: expanded once, then marked 'see above'."""
    root, _q, ids, _full = world
    tree = cmfgit(root, "lineage", ids["join"][:12], "--up").stdout
    lines = tree.splitlines()
    marked = [i for i, line in enumerate(lines) if "(see above)" in line]
    assert marked, tree
    for i in marked:
        label = lines[i].split("(see above)")[0].strip(" │├└─")
        earlier = [line for line in lines[:i] if label in line and "(see above)" not in line]
        assert earlier, f"'{label}' is marked 'see above' before it was shown:\n{tree}"


def test_unconsumed_root_keeps_its_path(world: Any) -> None:
    """Nothing consumed the model, so a downward walk reaches no record naming it;
    its path still comes from the record that produced it."""
    root, q, _ids, _full = world
    lineage, graph = q.lineage([A("model")], "down", None)
    assert graph.artifacts[h("model")].paths == {"models/model.pkl"}
    assert graph.artifacts[h("model")].types == {"model"}
    tree = cmfgit(root, "lineage", h("model"), "--down").stdout
    assert "models/model.pkl" in tree and "(no path)" not in tree
    out = json.loads(cmfgit(root, "lineage", h("model"), "--down", "--json").stdout)
    assert out["nodes"][0]["paths"] == ["models/model.pkl"] and out["nodes"][0]["type"] == "model"
