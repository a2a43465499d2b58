"""Helpers for the query tests: valid records with chosen lineage, and a full scan to compare the index with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blake3 import blake3

from cmfgit import index, schema
from cmfgit.repo import open_repo
from cmfgit.store import Store


def h(name: str) -> str:
    """The blake3 hash of the bytes ``name`` (stands for an artifact's content)."""
    return "blake3:" + blake3(name.encode()).hexdigest()


def art(name: str, type_: str = "dataset", path: str | None = None, **extra: Any) -> dict[str, Any]:
    item = {
        "path": path or f"data/{name}",
        "hash": h(name),
        "size": len(name),
        "type": type_,
        "kind": "file",
        "props": {},
    }
    item.update(extra)
    return item


def execution(
    stage: str,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    *,
    pipeline: str = "p",
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    started_at: str = "2026-03-04T05:06:07.000000Z",
    exit_code: int | None = 0,
    site: str = "site-a",
    uuid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "schema": schema.EXECUTION,
        "uuid": uuid or blake3(f"{pipeline}/{stage}/{started_at}/{params}".encode()).hexdigest()[:32],
        "pipeline": pipeline,
        "stage": stage,
        "type": stage,
        "command": ["python", f"{stage}.py"],
        "params": params or {},
        "started_at": started_at,
        "ended_at": started_at,
        "exit_code": exit_code,
        "site": site,
        "host": "h",
        "user": "u",
        "git": {"commit": "a" * 40, "branch": "main", "dirty": False, "remote": None, "tree": "b" * 40},
        "env": {"python": "3.11", "platform": "linux"},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "metrics": metrics or {},
    }
    record.update(extra)
    return record


def put(root: Path, *records: dict[str, Any]) -> list[str]:
    store = Store(root / ".cmf" / "objects")
    return [store.put(r) for r in records]


def ts(i: int) -> str:
    return f"2026-01-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"


def scan(root: Path) -> dict[str, Any]:
    """What the index should hold, from a full scan of the store (loose and packs)."""
    store = Store(root / ".cmf" / "objects")
    out: dict[str, Any] = {"ids": set(), "executions": set(), "events": set(), "kv": set(), "annotations": set()}
    for stored in store.iter_records():
        d = index.derive(stored.id, stored.data)
        _collect(out, d)
    return out


def _collect(out: dict[str, Any], d: index.Derived) -> None:
    out["ids"].add(d.id)
    if d.execution is not None:
        out["executions"].add((d.id, *d.execution))
        out["events"] |= {(d.id, *ev) for ev in d.events}
        out["kv"] |= {(d.id, *kv) for kv in d.kv}
    if d.annotation is not None:
        out["annotations"].add((d.id, *d.annotation))


def indexed(root: Path, scope: index.Scope = index.CHECKOUT) -> dict[str, Any]:
    """The same view, read back from the index (after its refresh)."""
    ix = index.open_index(open_repo(root), scope)
    db = ix.db()
    out: dict[str, Any] = {"ids": set(), "executions": set(), "events": set(), "kv": set(), "annotations": set()}
    try:
        out["ids"] = {r[0] for r in db.execute("SELECT id FROM records")}
        for row in db.execute("SELECT r.id, e.* FROM executions e JOIN records r ON r.rowid = e.rowid"):
            out["executions"].add((row[0], *row[2:]))
        for row in db.execute(
            "SELECT r.id, ev.dir, ev.pos, a.hash, ev.path, ev.type, ev.kind, ev.size FROM events ev "
            "JOIN records r ON r.rowid = ev.exec JOIN artifacts a ON a.rowid = ev.art"
        ):
            out["events"].add(tuple(row))
        for row in db.execute(
            "SELECT r.id, k.ns, k.name, kv.val FROM kv JOIN keys k ON k.rowid = kv.k "
            "JOIN records r ON r.rowid = kv.exec"
        ):
            out["kv"].add(tuple(row))
        for row in db.execute(
            "SELECT r.id, a.target, a.kind, a.at, a.tags FROM annotations a JOIN records r ON r.rowid = a.rowid"
        ):
            out["annotations"].add(tuple(row))
        unplaced = db.execute(
            "SELECT count(*) FROM records r WHERE NOT EXISTS (SELECT 1 FROM places p WHERE p.rec = r.rowid)"
        ).fetchone()[0]
        assert unplaced == 0  # every record is held by some file
    finally:
        ix.close()
    return out


def assert_index_matches_scan(root: Path) -> dict[str, Any]:
    expected = scan(root)
    got = indexed(root)
    for key in expected:
        assert got[key] == expected[key], f"index differs from a full scan in {key}: " + (
            f"missing {sorted(expected[key] - got[key])[:3]}, extra {sorted(got[key] - expected[key])[:3]}"
        )
    return expected
