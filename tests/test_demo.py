"""`cmfgit demo` end to end: two sites, a central repository, a local view."""

from __future__ import annotations

from pathlib import Path

import blake3
from conftest import cmfgit, git
from sites import records_at, stored_ids

from cmfgit import canonical


def _summary(records: dict[str, bytes]) -> list[tuple[str, str, str]]:
    found = []
    for data in records.values():
        record = canonical.load(data)
        if record["schema"] == "cmfgit/execution/1":
            found.append((record["site"], record["pipeline"], record["stage"]))
    return sorted(found)


def _tags(records: dict[str, bytes]) -> list[tuple[str, dict[str, object]]]:
    notes = [canonical.load(data) for data in records.values()]
    return [(n["target"], n["body"]) for n in notes if n["schema"] == "cmfgit/annotation/1"]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    proc = cmfgit(tmp_path, "demo", "--dir", str(base), timeout=300)
    out = proc.stdout
    central, lab, edge, analyst = (base / n for n in ("central.git", "lab", "edge", "analyst"))

    # Each site pushed its own branch; the edge's branch grew from the lab's.
    lab_runs = [("lab", "wine-quality", "prepare"), ("lab", "wine-quality", "train"), ("lab", "wine-quality", "train")]
    edge_runs = [("edge", "edge-monitor", "collect"), ("edge", "wine-quality", "evaluate")]
    assert _summary(records_at(central, "site/lab")) == lab_runs
    assert _summary(records_at(central, "site/edge")) == sorted(lab_runs + edge_runs)
    assert git(lab, "rev-parse", "HEAD") == git(central, "rev-parse", "site/lab")
    assert git(edge, "rev-parse", "HEAD") == git(central, "rev-parse", "site/edge")
    assert records_at(central, "main") == {}  # main carries the code only

    # The global view holds every record of both sites.
    view = records_at(central, "cmf/global")
    assert _summary(view) == sorted(lab_runs + edge_runs)

    # The lab tagged its better training run; the tag travelled with the records.
    ((target, body),) = _tags(view)
    trains = {rid: canonical.load(view[rid]) for rid in view if canonical.load(view[rid]).get("stage") == "train"}
    assert target == min(trains, key=lambda rid: trains[rid]["metrics"]["train_mse"])
    assert body == {"status": "candidate"}

    # The analyst's clone holds exactly the wine-quality records (and the tag), pending, and valid.
    local = stored_ids(analyst)
    assert local == {rid for rid, data in view.items() if canonical.load(data).get("pipeline") == "wine-quality"} | {
        rid for rid, data in view.items() if canonical.load(data)["schema"] == "cmfgit/annotation/1"
    }
    assert len(local) == 5
    assert records_at(analyst, "HEAD") == {}
    assert cmfgit(analyst, "fsck").stdout.startswith("fsck: 5 record(s) ok")
    assert "status=candidate" in out.split("cmfgit pull --pipeline wine-quality", 1)[1]

    # What the user saw: pushes, the local view, and the lineage of the evaluation.
    assert "branch     site/lab -> origin/site/lab: pushed" in out
    assert "branch     site/edge -> origin/site/edge: pushed" in out
    assert "global     origin/cmf/global: +2 record(s), 6 record(s) in the view" in out
    assert "global     origin/cmf/global: 6 record(s), 5 match" in out
    assert "lineage (upstream)" in out and "wine-quality/prepare" in out and "model.json" in out
    assert "edge-monitor" not in out.split("cmfgit pull --pipeline wine-quality", 1)[1]

    # The data travelled through the data remote, not through git: the edge evaluated the
    # candidate's model, byte for byte, and the analyst's pull placed it too.
    assert "model.json" not in git(central, "ls-tree", "-r", "--name-only", "site/lab")
    (evaluate,) = [canonical.load(d) for d in view.values() if canonical.load(d).get("stage") == "evaluate"]
    used = {i["path"]: i["hash"] for i in evaluate["inputs"]}
    made = {o["path"]: o["hash"] for o in canonical.load(view[target])["outputs"]}
    assert used["model.json"] == made["model.json"]
    for clone in (edge, analyst):
        assert "blake3:" + blake3.blake3((clone / "model.json").read_bytes()).hexdigest() == made["model.json"]
    stored = {p.parent.name + p.name for p in (base / "data-store" / "blake3").glob("*/*")}
    assert made["model.json"].removeprefix("blake3:") in stored
    assert "data       store: pushed" in out and "placed     model.json" in out
    assert "unchanged       cached           model.json" in out  # the edge's cmfgit status


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    proc = cmfgit(tmp_path, "demo", "--dir", str(tmp_path), check=False)
    assert proc.returncode == 1 and "is not empty" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
