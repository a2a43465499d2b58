"""Valid execution records, made fast (no log-run, no git state), for store and merge tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmfgit import canonical, schema
from cmfgit.store import Store


def execution(n: int, site: str = "site-a", started_at: str = "2026-03-04T05:06:07.000000Z") -> dict[str, Any]:
    return {
        "schema": schema.EXECUTION,
        "uuid": f"{n:032x}",
        "pipeline": "p",
        "stage": "s",
        "type": "s",
        "command": ["true"],
        "params": {"n": n},
        "started_at": started_at,
        "ended_at": started_at,
        "exit_code": 0,
        "site": site,
        "host": "h",
        "user": "u",
        "git": {"commit": None, "branch": "main", "dirty": False, "remote": None, "tree": None},
        "env": {"python": "3", "platform": "linux"},
        "inputs": [],
        "outputs": [],
        "metrics": {"m": n / 7},
    }


def write(
    root: Path, *numbers: int, site: str = "site-a", started_at: str = "2026-03-04T05:06:07.000000Z"
) -> list[str]:
    """Store loose records in the checkout at ``root``; returns their ids."""
    store = Store(root / ".cmf" / "objects")
    return [store.put(execution(n, site, started_at)) for n in numbers]


def encoded(n: int, **kwargs: Any) -> tuple[str, bytes]:
    data, rid = canonical.encode(execution(n, **kwargs))
    return rid, data


def old_style_gc(root: Path) -> None:
    """Pack as cmfgit did before packs were named by content: every pack of a group rewritten in
    place as ``pack/<site>/<period>.yaml``. Such packs still come from clones of older versions;
    two branches that both did this diverge in one file (what the merge driver and the union handle)."""
    from cmfgit import pack
    from cmfgit.gc import gc
    from cmfgit.repo import find_repo

    gc(find_repo(root))
    groups: dict[Path, dict[str, bytes]] = {}
    for path in sorted((root / ".cmf" / "objects" / "pack").rglob("*.yaml")):
        target = path.with_name(pack.period_of(path.name) + ".yaml")
        groups.setdefault(target, {}).update(pack.parse(path.read_bytes()))
        path.unlink()
    for target, records in groups.items():
        target.write_bytes(pack.serialize(records))
