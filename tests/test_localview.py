"""localview: which records a pull brings, on in-memory records (no git needed)."""

from __future__ import annotations

from typing import Any

import pytest

from cmfgit import canonical, schema
from cmfgit.errors import UsageError
from cmfgit.localview import ArtifactKey, Selection, choose, parse_since, select


def _h(name: str) -> str:
    return "blake3:" + canonical.digest(name.encode())


def _art(name: str, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    art: dict[str, Any] = {"path": name, "hash": _h(name), "size": 1, "type": "dataset", "kind": "file", "props": {}}
    if aliases:
        art["aliases"] = list(aliases)
    return art


def _execution(
    pipeline: str, stage: str, day: int, ins: list[dict[str, Any]], outs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "schema": schema.EXECUTION,
        "uuid": f"{pipeline}-{stage}-{day}",
        "pipeline": pipeline,
        "stage": stage,
        "type": stage,
        "command": [stage],
        "params": {"pipeline": "not this one"},  # a nested 'pipeline' key must not match
        "started_at": f"2026-01-{day:02d}T00:00:00.000000Z",
        "ended_at": None,
        "exit_code": 0,
        "site": "s",
        "host": "h",
        "user": "u",
        "git": {"commit": None, "branch": None, "dirty": False, "remote": None, "tree": None},
        "env": {"python": "3", "platform": "p"},
        "inputs": ins,
        "outputs": outs,
        "metrics": {},
    }


@pytest.fixture(scope="module")
def view() -> tuple[dict[str, bytes], dict[str, str]]:
    md5 = "md5:" + "ab" * 16
    made = {
        "raw": _execution("etl", "fetch", 1, [], [_art("raw.csv")]),
        "prep": _execution("wine", "prepare", 2, [_art("raw.csv")], [_art("train.csv")]),
        # 'import' knows train.csv only by CMF's md5; 'train' names both: they are one artifact.
        "import": _execution("cmf", "import", 3, [], [{**_art("legacy.csv"), "hash": md5}]),
        "train": _execution("wine", "train", 4, [_art("train.csv"), _art("legacy.csv", (md5,))], [_art("model")]),
        "no": _execution("no", "x", 5, [], []),  # a pipeline named 'no' (YAML 1.1 would say false)
        "late": _execution("other", "y", 9, [_art("model")], []),
    }
    records: dict[str, bytes] = {}
    names: dict[str, str] = {}
    for name, record in made.items():
        data, rid = canonical.encode(record)
        records[rid] = data
        names[rid] = name
    note = {"schema": schema.ANNOTATION, "target": _h("model"), "kind": "label", "at": schema.utc_now(), "body": {}}
    data, rid = canonical.encode(note)
    records[rid] = data
    names[rid] = "note"
    ids = {name: rid for rid, name in names.items()}
    # Tags (cmfgit/tags.py): 'prep' is status=prod, then 'raw' too until a later statement removes it;
    # the artifact raw.csv is owner=ann (so the runs that read or wrote it carry the tag).
    for name, target, at, body in [
        ("tag-prep", ids["prep"], "2026-02-01T00:00:00.000000Z", {"status": "prod", "owner": "bob"}),
        ("tag-raw", ids["raw"], "2026-02-01T00:00:00.000000Z", {"status": "prod"}),
        ("untag-raw", ids["raw"], "2026-02-02T00:00:00.000000Z", {"status": None}),
        ("tag-art", _h("raw.csv"), "2026-02-01T00:00:00.000000Z", {"owner": "ann"}),
    ]:
        data, rid = canonical.encode(
            {"schema": schema.ANNOTATION, "target": target, "kind": "tag", "at": at, "body": body}
        )
        records[rid] = data
        names[rid] = name
    return records, names


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (
            Selection(),
            {"raw", "prep", "import", "train", "no", "late", "note", "tag-prep", "tag-raw", "untag-raw", "tag-art"},
        ),
        (Selection(pipelines=("wine",)), {"prep", "train", "note", "tag-prep", "tag-art"}),
        (Selection(pipelines=("no",)), {"no"}),
        (Selection(pipelines=("not this one",)), set()),
        (Selection(since="2026-01-04T00:00:00.000000Z"), {"train", "no", "late", "note"}),
        (
            Selection(pipelines=("other",), with_lineage=True),
            {"late", "train", "prep", "raw", "import", "note", "tag-prep", "tag-raw", "untag-raw", "tag-art"},
        ),
        (
            Selection(pipelines=("wine",), since="2026-01-03T00:00:00.000000Z", with_lineage=True),
            {"train", "prep", "raw", "import", "note", "tag-prep", "tag-raw", "untag-raw", "tag-art"},
        ),
        (
            Selection(artifacts=(ArtifactKey("x", hash_prefix=_h("train.csv")[7:20]),)),
            {"prep", "train", "note", "tag-prep", "tag-art"},
        ),
        (Selection(artifacts=(ArtifactKey("x", hash_prefix="md5:abab"),)), {"import", "train", "note"}),
        (
            Selection(artifacts=(ArtifactKey("raw.csv", path="raw.csv"),)),
            {"raw", "prep", "tag-prep", "tag-raw", "untag-raw", "tag-art"},
        ),
        (Selection(stages=("train",)), {"train", "note"}),
        (Selection(stages=("prepare", "fetch")), {"prep", "raw", "tag-prep", "tag-raw", "untag-raw", "tag-art"}),
        (Selection(pipelines=("etl",), stages=("prepare",)), set()),
        # --tag: runs that carry the tag, or read or wrote an artifact that does; repeated: AND
        (Selection(tags=(("status", "prod"),)), {"prep", "tag-prep", "tag-art"}),
        (Selection(tags=(("owner", "ann"),)), {"raw", "prep", "tag-prep", "tag-raw", "untag-raw", "tag-art"}),
        (Selection(tags=(("owner", "bob"), ("status", "prod"))), {"prep", "tag-prep", "tag-art"}),
        (Selection(tags=(("owner", "bob"), ("status", "dev"))), set()),
        (
            Selection(tags=(("status", "prod"),), with_lineage=True),
            {"prep", "raw", "tag-prep", "tag-raw", "untag-raw", "tag-art"},
        ),
    ],
)
def test_select_and_choose_agree(
    view: tuple[dict[str, bytes], dict[str, str]], selection: Selection, expected: set[str]
) -> None:
    records, names = view
    assert {names[r] for r in select(records, selection)} == expected
    streamed = list(choose(iter(records.items()), selection))
    assert {names[r] for r, _ in streamed} == expected
    assert all(records[r] == data for r, data in streamed)


def test_parse_since() -> None:
    assert parse_since("2026-01-31") == "2026-01-31T00:00:00.000000Z"
    assert parse_since("2026-01-31T12:00Z") == "2026-01-31T12:00:00.000000Z"
    assert parse_since("2026-01-31T12:00+02:00") == "2026-01-31T10:00:00.000000Z"
    from datetime import datetime, timezone

    now = datetime(2026, 2, 10, tzinfo=timezone.utc)
    assert parse_since("7d", now) == "2026-02-03T00:00:00.000000Z"
    assert parse_since("12h", now) == "2026-02-09T12:00:00.000000Z"
    with pytest.raises(UsageError):
        parse_since("yesterday")


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(pipelines=("wine",)), {"train", "note", "retraction"}),
        (Selection(pipelines=("etl",)), {"raw", "retraction", "tag-raw", "untag-raw", "tag-art"}),
        # prep is withdrawn: no longer a producer of train.csv, so raw is no ancestor either
        (Selection(pipelines=("other",), with_lineage=True), {"late", "train", "import", "note", "retraction"}),
        (
            Selection(artifacts=(ArtifactKey("raw.csv", path="raw.csv"),)),
            {"raw", "retraction", "tag-raw", "untag-raw", "tag-art"},
        ),
        (Selection(tags=(("status", "prod"),)), {"retraction"}),  # prep, the only run tagged so, is withdrawn
    ],
)
def test_retractions_travel_with_every_pull_and_retracted_records_stay_behind(
    view: tuple[dict[str, bytes], dict[str, str]], selection: Selection, expected: set[str]
) -> None:
    from cmfgit import retractions

    records, names = dict(view[0]), dict(view[1])
    (prep,) = [rid for rid, name in names.items() if name == "prep"]
    data, rid = canonical.encode(retractions.record([prep], reason="bad split"))
    records[rid] = data
    names[rid] = "retraction"
    assert {names[r] for r in select(records, selection)} == expected
    streamed = list(choose(iter(records.items()), selection))
    assert {names[r] for r, _ in streamed} == expected
    everything = {names[r] for r, _ in choose(iter(records.items()), Selection())}
    assert "retraction" in everything
