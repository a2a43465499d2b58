"""Helpers shared by the CMF interoperability tests (import, export, compat)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conftest import ROOT, cmfgit

from cmfgit.graph import Graph
from cmfgit.reading import executions
from cmfgit.repo import open_repo

SET1 = ROOT / "tests" / "fixtures" / "cmf-set1"
MLMD = SET1 / "mlmd"
EXPORT_JSON = SET1 / "wine-quality.json"
PIPELINE = "wine-quality"

# md5 uris of set1's artifacts (md5 of the bytes in artifact_files/)
WINE = "md5:520cf4daca064e7fb696ab0086af3662"
LABELS = "md5:4acc5ac0de60a78dbe1f4af4d22dd2d5"
TRAIN = "md5:643ae685b8c7a58dcc13ceb57541639c"
TEST = "md5:ea41c2415489c680ce3b811eec502409"
MODEL = "md5:e9559487b9c0fa89fffbc664c048daf0"
STEP_METRICS = "md5:40c02466e640a26cbd4bd1708ad9ccf3"
ENV = "md5:2f6ab448b38d4e809cba8239b9f98db7"


def copy_inputs(dest: Path) -> tuple[Path, Path]:
    """Writable copies of set1's mlmd and export JSON in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    mlmd = dest / "mlmd"
    export = dest / "wine-quality.json"
    shutil.copyfile(MLMD, mlmd)
    shutil.copyfile(EXPORT_JSON, export)
    return mlmd, export


def copy_artifact_files(repo: Path) -> None:
    """Put set1's artifact bytes in the working tree (the "bytes present" case)."""
    shutil.copytree(SET1 / "artifact_files", repo, dirs_exist_ok=True)


def import_json(repo: Path, path: Path, *extra: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cmfgit(repo, "import", str(path), "--json", *extra).stdout)
    return report


def records(repo: Path, pipeline: str | None = None) -> dict[str, dict[str, Any]]:
    """id -> execution record, read in-process from the store."""
    return dict(executions(open_repo(repo), pipeline))


def by_stage(repo: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for rid, rec in records(repo).items():
        assert rec["stage"] not in found, f"two executions of stage {rec['stage']}"
        found[rec["stage"]] = (rid, rec)
    return found


def object_files(repo: Path) -> set[str]:
    root = repo / ".cmf" / "objects"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def graph(repo: Path) -> Graph:
    return Graph.build(records(repo).items())


def artifacts(record: dict[str, Any]) -> list[dict[str, Any]]:
    return list(record["inputs"]) + list(record["outputs"])


def by_path(record: dict[str, Any], side: str) -> dict[str, dict[str, Any]]:
    return {a["path"]: a for a in record[side]}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _keys(node: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset((k, _kind(v)) for k, v in node.items())


def key_levels(document: dict[str, Any]) -> dict[str, set[frozenset[tuple[str, str]]]]:
    """Level name -> the distinct (key, kind of value) sets found at that level of a CMF export.

    Levels: top, pipeline, stage, execution, event, artifact:<CMF type>, and the
    ``properties`` of each (custom_properties hold user data and are not compared).
    """
    levels: dict[str, set[frozenset[tuple[str, str]]]] = {}

    def add(level: str, node: dict[str, Any]) -> None:
        levels.setdefault(level, set()).add(_keys(node))
        if "properties" in node:
            levels.setdefault(f"{level}.properties", set()).add(_keys(node["properties"]))

    add("top", document)
    for pipeline in document["Pipeline"]:
        add("pipeline", pipeline)
        for stage in pipeline["stages"]:
            add("stage", stage)
            for execution in stage["executions"]:
                add("execution", execution)
                for event in execution["events"]:
                    add("event", event)
                    add(f"artifact:{event['artifact']['type']}", event["artifact"])
    return levels


def assert_cmf_structure(document: dict[str, Any]) -> None:
    """``document`` has set1's keys and nesting at every level they share (set1 is real cmflib output)."""
    reference = key_levels(json.loads(EXPORT_JSON.read_text()))
    levels = key_levels(document)
    assert set(levels) >= {"top", "pipeline", "stage", "execution", "event"}
    for level, key_sets in levels.items():
        name = level.replace("artifact:Dataslice", "artifact:Dataset")  # set1 has no data slice
        assert name in reference, f"level {level} is not in set1's export"
        assert key_sets == reference[name], (
            f"{level}: {sorted(map(sorted, key_sets))} != {sorted(map(sorted, reference[name]))}"
        )


def lineage(repo: Path, target: str, *options: str) -> tuple[set[str], set[str]]:
    """(execution ids, artifact hashes) that `cmfgit lineage TARGET --format json` shows."""
    shown = json.loads(cmfgit(repo, "lineage", target, "--format", "json", *options).stdout)
    executions = {n["id"] for n in shown["nodes"] if n["kind"] == "execution"}
    artifacts = {n["hash"] for n in shown["nodes"] if n["kind"] == "artifact"}
    return executions, artifacts
