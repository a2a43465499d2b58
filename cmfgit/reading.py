"""Reading records back: listing executions, showing one, and fsck.

The functions here return plain data; ``cli.py`` renders it. The JSON shape
of an execution is the record itself plus its ``id`` (see docs/format.md).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cmfgit import canonical, pack, schema
from cmfgit.errors import CmfgitError, RecordError
from cmfgit.fsutil import TMP_PREFIX
from cmfgit.repo import Repo
from cmfgit.store import PACK_DIR

if TYPE_CHECKING:
    from cmfgit.index import Scope

_LOOSE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}\.yaml$")


def as_json(rid: str, record: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON object of a record: ``{"id": ..., **record}``.

    JSON has no NaN or infinity, so those floats become the strings "NaN",
    "Infinity" and "-Infinity".
    """
    return {"id": rid, **_json_safe(record)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def executions(
    repo: Repo,
    pipeline: str | None = None,
    stage: str | None = None,
    limit: int | None = None,
    *,
    where: str | None = None,
    sort: str | None = None,
    scope: Scope | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Executions from the query index, newest first unless ``sort`` says otherwise
    (then by start time, then id, for a stable order)."""
    from cmfgit.query import CmfQuery

    with CmfQuery(repo, scope=scope) as q:
        return q.execution_records(where, pipeline=pipeline, stage=stage, sort=sort, limit=limit)


def show(repo: Repo, prefix: str, scope: Scope | None = None) -> tuple[str, dict[str, Any]]:
    """One record by id or unique prefix, from the query index of ``scope``."""
    from cmfgit.query import CmfQuery

    with CmfQuery(repo, scope=scope) as q:
        return q.record(prefix)


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the repository root
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class FsckReport:
    checked: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_record(data: bytes, where: str, expected_id: str | None) -> None:
    """Raise RecordError unless ``data`` is a valid, canonical record."""
    record = canonical.decode(data, where, expected_id)
    schema.validate(record, where)


def _problem(exc: RecordError, fallback: str) -> Problem:
    reason = exc.reason
    where = exc.where or fallback
    return Problem(where, reason)


def fsck(repo: Repo) -> FsckReport:
    """Verify every record: id matches content, canonical form, valid schema.

    A record held by more than one file (loose and packed, or in two packs
    after a merge of two branches' gcs) is counted once, and is no problem."""
    root = repo.objects_dir
    problems: list[Problem] = []
    seen: set[str] = set()
    unreadable = 0  # packs that could not be read: one each
    for rel, full in _walk_files(root):
        shown = os.path.relpath(full, repo.root)
        name = os.path.basename(rel)
        if name.startswith(TMP_PREFIX):
            continue  # an interrupted write: invisible to readers, removed by gc
        if rel.startswith(PACK_DIR + "/"):
            if not rel.endswith(".yaml"):
                problems.append(Problem(shown, "unexpected file in the pack directory"))
                continue
            unreadable += _check_pack(full, shown, problems, seen)
            continue
        if not _LOOSE.match(rel):
            problems.append(Problem(shown, "unexpected file in the object store (not <2 hex>/<62 hex>.yaml)"))
            continue
        rid = rel[:2] + rel[3:-5]
        try:
            with open(full, "rb") as fh:
                data = fh.read()
            check_record(data, shown, rid)
        except RecordError as exc:
            problems.append(_problem(exc, shown))
        except OSError as exc:
            problems.append(Problem(shown, f"unreadable: {exc.strerror}"))
        seen.add(rid)  # loose files come first (hex shards sort before 'pack')
    return FsckReport(len(seen) + unreadable, problems)


def _check_pack(full: str, shown: str, problems: list[Problem], seen: set[str]) -> int:
    """Check a pack's records not seen in another file; returns 1 if the pack cannot be read."""
    try:
        with open(full, "rb") as fh:
            records = pack.parse(fh.read(), shown, verify=True)
    except RecordError as exc:
        problems.append(_problem(exc, shown))
        return 1
    except OSError as exc:
        problems.append(Problem(shown, f"unreadable: {exc.strerror}"))
        return 1
    for rid, data in records.items():
        if rid in seen:
            continue  # the same id, so the same bytes (verified): checked already
        seen.add(rid)
        try:
            check_record(data, f"{shown} (record {rid[:12]})", rid)
        except RecordError as exc:
            problems.append(_problem(exc, shown))
    return 0


def _walk_files(root: os.PathLike[str] | str) -> Iterator[tuple[str, str]]:
    """(path relative to root with '/', full path) of every file, sorted."""
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            yield os.path.relpath(full, root).replace(os.sep, "/"), full


def require_clean(report: FsckReport) -> None:
    if not report.ok:
        raise CmfgitError(f"{len(report.problems)} bad record(s); run 'cmfgit fsck' for the list")
