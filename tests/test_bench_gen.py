"""bench/gen_records.py makes valid records with realistic lineage, fast enough for a million."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

from cmfgit import pack, schema
from cmfgit.graph import Graph
from cmfgit.store import Store

sys.path.insert(0, str(ROOT / "bench"))
import gen_records  # noqa: E402


def test_generated_records_are_valid_and_shaped_like_real_use(tmp_path: Path) -> None:
    records = list(gen_records.iter_canonical(1500, seed=3))
    assert len(records) == 1500 == len({rid for rid, _, _ in records})
    by_pipeline: dict[str, set[str]] = defaultdict(set)
    for _rid, _data, record in records:
        schema.validate(record)
        by_pipeline[record["pipeline"]].add(record["stage"])
    assert all(3 <= len(stages) <= 5 for stages in by_pipeline.values())
    graph = Graph.build((rid, record) for rid, _, record in records)
    raw = [key for key, info in graph.artifacts.items() if any(p.startswith("data/raw/") for p in info.paths)]
    pipelines_per_dataset = [{graph.executions[r]["pipeline"] for r in graph.consumers[key]} for key in raw]
    assert max(len(p) for p in pipelines_per_dataset) >= 2  # shared across pipelines
    sweeps = [len(graph.consumers.get(k, [])) for k, info in graph.artifacts.items() if "data/" in min(info.paths)]
    assert max(sweeps) >= 8  # a data version trained many times

    # Written packed (by site and month) and loose: the store reads back exactly these records.
    for layout in ("packed", "loose"):
        root = tmp_path / layout
        assert gen_records.write(root, 400, layout, seed=5) == 400
        stored = {s.id: s.data for s in Store(root / ".cmf/objects").iter_records()}
        assert stored == {rid: data for rid, data, _ in gen_records.iter_canonical(400, seed=5)}
    packs = sorted((tmp_path / "packed/.cmf/objects/pack").rglob("*.yaml"))
    assert len(packs) > 1 and all(pack.parse(p.read_bytes(), str(p)) for p in packs)
