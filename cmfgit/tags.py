"""Tags: key/value labels on executions and artifacts, added after the fact.

Records never change, so a tag is an annotation record (``cmfgit/annotation/1``,
kind ``tag``) whose body maps tag names to values; a ``null`` value removes the
tag. The tags of a target are every such body folded in order of (``at``, id):
for each name the latest statement wins, and the id breaks ties, so every
clone that holds the same records shows the same tags (docs/format.md §4).

Tags travel like any record: committed by the hooks, merged by the driver,
pushed to the global view.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cmfgit import schema
from cmfgit.errors import CmfgitError, UsageError
from cmfgit.schema import TAG_KIND as TAG_KIND  # re-exported: what kind of annotation a tag is

if TYPE_CHECKING:
    from cmfgit.query import CmfQuery
    from cmfgit.repo import Repo

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$")


def is_name(name: str) -> bool:
    return _NAME.match(name) is not None


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"'{name}' is not a tag name (letters, digits, '_', '.', ':', '/', '-'; at most 128 characters)"
        )
    return name


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` words into a mapping; values stay strings, as in git and MLflow."""
    found: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"'{item}' is not KEY=VALUE (remove a tag with --remove KEY)")
        found[check_name(key.strip())] = value
    return found


def annotation(
    target: str, changes: Mapping[str, str | None], *, site: str | None = None, user: str | None = None
) -> dict[str, Any]:
    """The annotation record that sets (value) or removes (None) tags of ``target``."""
    if not changes:
        raise UsageError("nothing to tag: give KEY=VALUE or --remove KEY")
    record: dict[str, Any] = {
        "schema": schema.ANNOTATION,
        "target": target,
        "kind": TAG_KIND,
        "at": schema.utc_now(),
        "body": {check_name(k): v for k, v in sorted(changes.items())},
    }
    if site:
        record["site"] = site
    if user:
        record["user"] = user
    return record


def fold(annotations: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """target -> {name: value}, from (id, annotation record) pairs of kind ``tag``.

    Statements apply in order of (at, id); a null value removes the name.
    """
    ordered = sorted(
        ((str(rec.get("at") or ""), rid, rec) for rid, rec in annotations if rec.get("kind") == TAG_KIND),
        key=lambda t: (t[0], t[1]),
    )
    tags: dict[str, dict[str, Any]] = {}
    for _at, _rid, rec in ordered:
        target = rec.get("target")
        body = rec.get("body")
        if not isinstance(target, str) or not isinstance(body, dict):
            continue
        current = tags.setdefault(target, {})
        for name, value in body.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
    return {t: dict(sorted(v.items())) for t, v in tags.items() if v}


def tag(
    repo: Repo,
    target: str,
    changes: Mapping[str, str | None],
    *,
    commit: bool = False,
) -> tuple[str, str | None, dict[str, Any]]:
    """Set (value) or remove (None) tags of the execution or artifact ``target`` names.

    ``target`` is what ``cmfgit lineage`` takes: an execution id prefix, an
    artifact hash (prefix) or a path, which must name exactly one artifact version.
    Returns (target id, new annotation id or None when nothing changed, its tags now).
    """
    from cmfgit.config import site_name
    from cmfgit.query import CmfQuery
    from cmfgit.recorder import _user
    from cmfgit.store import Store

    repo.require_initialized()
    with CmfQuery(repo) as q:
        key = resolve_one(q, target)
        before = q.tags_of(key)
    wanted = {k: v for k, v in changes.items() if before.get(k) != v and not (v is None and k not in before)}
    if not wanted:
        return key, None, before
    record = annotation(key, wanted, site=site_name(repo), user=_user())
    rid = Store(repo.objects_dir).put(record)
    after = {k: v for k, v in {**before, **wanted}.items() if v is not None}
    if commit:
        from cmfgit.commit import commit_metadata

        rel = Store(repo.objects_dir).loose_path(rid).relative_to(repo.root).as_posix()
        commit_metadata(repo, f"cmfgit: tag {key[:19]} {' '.join(sorted(wanted))}", [rel])
    return key, rid, dict(sorted(after.items()))


def resolve_one(q: CmfQuery, target: str) -> str:
    """The one execution id or artifact hash ``target`` names (as lineage reads it).

    A path in the working tree means its current bytes: if those were never
    recorded, tagging an older recorded version instead would be a silent mistake.
    """
    import os

    from cmfgit.lineage import resolve_target

    roots, understood = resolve_target(q, target)
    if os.path.lexists(target) and "every recorded version" in understood:
        raise CmfgitError(
            f"{target}: its current content was never recorded; tag a recorded version by its hash"
            f" (cmfgit artifacts, or cmfgit lineage {target})"
        )
    if len(roots) != 1:
        raise CmfgitError(
            f"'{target}' names {len(roots)} artifact versions ({understood}); tag one of them by its hash"
        )
    return roots[0].key
