"""Lineage over in-memory records (cmfgit.graph): exact answers on known graphs."""

from __future__ import annotations

from typing import Any

import pytest

from cmfgit.graph import Edge, Graph, Node


def h(name: str) -> str:
    """A fake but well-formed blake3 hash named after ``name``."""
    return "blake3:" + name.encode().hex().ljust(64, "0")[:64]


def ex(stage: str, inputs: list[str], outputs: list[str], **extra: Any) -> dict[str, Any]:
    def arts(names: list[str]) -> list[dict[str, Any]]:
        return [
            {"path": f"data/{n}", "hash": h(n), "size": 1, "type": "dataset", "kind": "file", "props": {}}
            for n in names
        ]

    return {
        "schema": "cmfgit/execution/1",
        "pipeline": extra.get("pipeline", "p"),
        "stage": stage,
        "started_at": extra.get("started_at", "2026-01-01T00:00:00.000000Z"),
        "exit_code": 0,
        "inputs": arts(inputs),
        "outputs": arts(outputs),
    }


def rid(name: str) -> str:
    return name.encode().hex().ljust(64, "f")[:64]


def A(name: str) -> Node:
    return Node("artifact", h(name))


def E(name: str) -> Node:
    return Node("execution", rid(name))


def graph(**execs: dict[str, Any]) -> Graph:
    return Graph.build((rid(name), record) for name, record in execs.items())


def test_artifact_consumed_by_two_stages() -> None:
    g = graph(
        prep=ex("prep", ["raw"], ["clean"]),
        train=ex("train", ["clean"], ["model"]),
        stats=ex("stats", ["clean"], ["report"]),
    )
    down = g.lineage(A("clean"), "down")
    assert set(down.levels) == {A("clean"), E("train"), E("stats"), A("model"), A("report")}
    assert down.edges == {
        Edge(A("clean"), E("train"), "input"),
        Edge(A("clean"), E("stats"), "input"),
        Edge(E("train"), A("model"), "output"),
        Edge(E("stats"), A("report"), "output"),
    }
    assert sorted(g.consumers_of(h("clean"))) == sorted([rid("train"), rid("stats")])
    assert g.producers_of(h("clean")) == [rid("prep")]
    up = g.lineage(A("model"), "up")
    assert set(up.levels) == {A("model"), E("train"), A("clean"), E("prep"), A("raw")}
    assert up.levels[E("prep")] == 2 and up.levels[A("raw")] == 2
    both = g.lineage(A("clean"), "both")
    assert both.executions() == {rid("prep"), rid("train"), rid("stats")}


def test_diamond() -> None:
    g = graph(
        split=ex("split", ["raw"], ["left", "right"]),
        l=ex("l", ["left"], ["lf"]),
        r=ex("r", ["right"], ["rf"]),
        join=ex("join", ["lf", "rf"], ["out"]),
    )
    up = g.lineage(A("out"), "up")
    assert up.executions() == {rid(n) for n in ("split", "l", "r", "join")}
    assert up.artifacts() == {h(n) for n in ("raw", "left", "right", "lf", "rf", "out")}
    assert {(e.source.key[-64:], e.target.key[-64:]) for e in up.edges} == {
        (s.key[-64:], t.key[-64:])
        for s, t in [
            (A("raw"), E("split")),
            (E("split"), A("left")),
            (E("split"), A("right")),
            (A("left"), E("l")),
            (A("right"), E("r")),
            (E("l"), A("lf")),
            (E("r"), A("rf")),
            (A("lf"), E("join")),
            (A("rf"), E("join")),
            (E("join"), A("out")),
        ]
    }
    assert len(up.edges) == 10
    assert up.levels[E("split")] == 3
    down = g.lineage(A("raw"), "down")
    assert down.executions() == up.executions() and down.edges == up.edges
    # Depth limits: one hop up from out is join and its two inputs.
    one = g.lineage(A("out"), "up", depth=1)
    assert set(one.levels) == {A("out"), E("join"), A("lf"), A("rf")}
    assert g.ancestor_executions([rid("join")]) == {rid("split"), rid("l"), rid("r")}
    assert g.descendant_executions([rid("split")], depth=1) == {rid("l"), rid("r")}


def test_chain_fifty_stages_deep() -> None:
    execs = {f"s{i}": ex(f"s{i}", [f"a{i}"], [f"a{i + 1}"]) for i in range(50)}
    g = graph(**execs)
    up = g.lineage(A("a50"), "up")
    assert up.executions() == {rid(f"s{i}") for i in range(50)}
    assert up.artifacts() == {h(f"a{i}") for i in range(51)}
    assert len(up.edges) == 100
    assert up.levels[A("a0")] == 50
    assert g.lineage(A("a50"), "up", depth=10).executions() == {rid(f"s{i}") for i in range(40, 50)}
    down = g.lineage(E("s0"), "down")
    assert down.executions() == up.executions()
    assert down.levels[E("s49")] == 49
    # Depth 0 from an execution: itself and its outputs.
    assert set(g.lineage(E("s10"), "down", depth=0).levels) == {E("s10"), A("a11")}


def test_output_with_same_hash_as_input_does_not_loop() -> None:
    g = graph(
        make=ex("make", ["src"], ["data"]),
        copy=ex("copy", ["data"], ["data"]),  # a copy: output bytes == input bytes
        use=ex("use", ["data"], ["model"]),
    )
    up = g.lineage(A("model"), "up")
    assert up.executions() == {rid("make"), rid("copy"), rid("use")}
    assert Edge(A("data"), E("copy"), "input") in up.edges
    assert Edge(E("copy"), A("data"), "output") in up.edges
    down = g.lineage(A("src"), "down")
    assert down.executions() == {rid("make"), rid("copy"), rid("use")}
    both = g.lineage(E("copy"), "both")
    assert both.executions() == {rid("make"), rid("copy"), rid("use")}


def test_aliases_join_md5_and_blake3() -> None:
    md5 = "md5:" + "ab" * 16
    imported = ex("prepare", ["raw"], [])
    imported["outputs"] = [
        {"path": "x.csv", "hash": md5, "size": None, "type": "dataset", "kind": "external", "props": {}}
    ]
    native = ex("train", [], ["model"])
    native["inputs"] = [
        {"path": "x.csv", "hash": h("x"), "size": 3, "type": "dataset", "kind": "file", "props": {}, "aliases": [md5]}
    ]
    g = graph(prepare=imported, train=native)
    assert g.canonical(md5) == h("x")
    assert g.find_artifacts(md5[:10]) == [h("x")]
    assert g.find_artifacts("md5:abab") == [h("x")]
    up = g.lineage(Node("artifact", md5), "up")
    assert up.roots == [A("x")]
    assert up.executions() == {rid("prepare")}
    assert g.artifacts[h("x")].aliases == {md5}
    down = g.lineage(A("x"), "down")
    assert down.executions() == {rid("train")}


def test_missing_artifacts_and_other_records_are_ignored() -> None:
    rec = ex("s", ["a"], [])
    rec["outputs"] = [{"path": "gone", "hash": None, "size": None, "type": "model", "kind": "missing", "props": {}}]
    g = Graph.build([(rid("s"), rec), (rid("note"), {"schema": "cmfgit/annotation/1", "target": rid("s")})])
    assert set(g.executions) == {rid("s")}
    assert set(g.artifacts) == {h("a")}
    with pytest.raises(KeyError):
        g.lineage(A("nope"))
    with pytest.raises(ValueError):
        g.lineage(A("a"), "sideways")
