"""N executions side by side: the data of ``cmfgit compare`` and of the UI's compare page.

::

    from cmfgit.compare import compare
    from cmfgit.query import CmfQuery

    with CmfQuery() as q:
        table = compare(q, ["@1", "@2", "3f2a"])   # ids (prefixes) or @N, as `cmfgit show` takes them

Plain data, no rendering: ``cli/compare.py`` draws it in the terminal (and as Markdown or
CSV), ``ui/api.py`` serves it as ``/api/compare``. The shape is in docs/json.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cmfgit.errors import UsageError
from cmfgit.schema import EXECUTION
from cmfgit.views import natural_key

if TYPE_CHECKING:
    from cmfgit.query import CmfQuery


def compare(query: CmfQuery, refs: Sequence[str]) -> dict[str, Any]:
    """The executions ``refs`` name (at least two, each once), side by side:
    ``{"runs": [ROW], "params": [ROW], "metrics": [ROW], "steps": {...}}`` (docs/json.md)."""
    return compare_objects(resolve_runs(query, refs))


def resolve_runs(query: CmfQuery, refs: Sequence[str]) -> list[dict[str, Any]]:
    """The execution objects (``show --json``) of ``refs``, in their order.

    A ref is what ``cmfgit show`` takes: a record id or unique prefix, ``@N`` or
    ``STAGE@N``. Fewer than two refs, two refs for the same run, or a ref that
    names no execution is a one-line error."""
    if len(refs) < 2:
        raise UsageError(f"compare needs at least 2 runs, got {len(refs)}")
    objects: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for ref in refs:
        rid = query.resolve_record(ref)
        if rid in seen:
            raise UsageError(f"'{seen[rid]}' and '{ref}' are the same run ({rid[:12]}); name each run once")
        seen[rid] = ref
        obj = query.execution(rid)
        if obj.get("schema") != EXECUTION:
            raise UsageError(f"'{ref}' is record {rid[:12]}, which is not an execution")
        objects.append(obj)
    return objects


def compare_objects(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`compare` over execution objects already read (``show --json`` objects)."""
    steps: dict[str, dict[str, list[list[Any]]]] = {}
    for obj in objects:
        for name, series in (obj.get("step_metrics") or {}).items():
            steps.setdefault(name, {})[obj["id"]] = [list(pair) for pair in series]
    return {
        "runs": [run_row(obj) for obj in objects],
        "params": value_rows([obj.get("params") or {} for obj in objects]),
        "metrics": value_rows([obj.get("metrics") or {} for obj in objects]),
        "steps": {name: steps[name] for name in sorted(steps, key=natural_key)},
    }


def run_row(
    obj: dict[str, Any], params: Sequence[str] | None = None, metrics: Sequence[str] | None = None
) -> dict[str, Any]:
    """The UI's ROW of an execution object: its summary, and its params and metrics
    (all of them, or those named). Also ``code``: ``{"commit", "dirty", "tree"}``."""
    git = obj.get("git") or {}
    all_params, all_metrics = obj.get("params") or {}, obj.get("metrics") or {}
    return {
        "id": obj["id"],
        "pipeline": obj.get("pipeline"),
        "stage": obj.get("stage"),
        "started_at": obj.get("started_at"),
        "duration": duration(obj.get("started_at"), obj.get("ended_at")),
        "status": status(obj),
        "exit_code": obj.get("exit_code"),
        "site": obj.get("site"),
        "code": {"commit": git.get("commit"), "dirty": git.get("dirty"), "tree": git.get("tree")},
        "params": _chosen(all_params, params),
        "metrics": _chosen(all_metrics, metrics),
    }


def _chosen(values: dict[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    if names is None:
        return dict(values)
    return {k: values[k] for k in names if k in values}


def status(obj: dict[str, Any]) -> str:
    """``ok`` (exit code 0), ``failed`` (any other exit code, or ended without one:
    killed) or ``running`` (no exit code, not ended)."""
    code = obj.get("exit_code")
    if code == 0 and not isinstance(code, bool):
        return "ok"
    if code is None and obj.get("ended_at") is None:
        return "running"
    return "failed"


def duration(started: str | None, ended: str | None) -> float | None:
    """Seconds from ``started`` to ``ended`` (record times), or None without both."""
    if not started or not ended:
        return None
    try:
        span = _time(ended) - _time(started)
    except ValueError:
        return None
    return round(span.total_seconds(), 6)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def value_rows(mappings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key of any mapping, keys in natural order (``lr_2`` before ``lr_10``):
    ``{"key", "values": [value or null per mapping], "changed", "delta"}``.

    ``changed``: the values differ, or some mappings lack the key. ``delta``: each
    value minus the first mapping's, when both are numbers (booleans are not); null
    otherwise, and always for the first."""
    keys = sorted({k for m in mappings for k in m}, key=natural_key)
    rows = []
    for key in keys:
        values = [m.get(key) for m in mappings]
        present = {key in m for m in mappings}
        changed = len(present) > 1 or any(_differ(values[0], v) for v in values[1:])
        rows.append({"key": key, "values": values, "changed": changed, "delta": deltas(values)})
    return rows


def _differ(a: Any, b: Any) -> bool:
    """Values differ: 1 and 1.0 are the same number, but true is not 1."""
    if is_number(a) and is_number(b):
        return bool(a != b)
    return type(a) is not type(b) or bool(a != b)


def is_number(value: Any) -> bool:
    """An int or a finite float, not a boolean (non-finite metrics are strings in JSON)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def deltas(values: Sequence[Any]) -> list[int | float | None]:
    """Each value minus the first, where both are numbers; the first's is null.
    Float differences are rounded to 12 significant digits (0.3 - 0.1 is 0.2)."""
    first = values[0] if values else None
    out: list[int | float | None] = [None]
    for value in values[1:]:
        if not (is_number(first) and is_number(value)):
            out.append(None)
            continue
        try:
            d = value - first
        except OverflowError:  # an int beyond any float, against a float
            out.append(None)
            continue
        if isinstance(d, float):
            d = float(f"{d:.12g}") + 0.0 if math.isfinite(d) else None  # + 0.0: no negative zero
        out.append(d)
    return out


def only_changed(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` (a :func:`compare` result) with only the params and metrics that changed."""
    return {
        **table,
        "params": [row for row in table["params"] if row["changed"]],
        "metrics": [row for row in table["metrics"] if row["changed"]],
    }


def unique_prefixes(query: CmfQuery, ids: Sequence[str], minimum: int = 7) -> list[str]:
    """The shortest prefix of each id (at least ``minimum`` hex digits) that names it alone,
    among ``ids`` and in the query's scope (so it can be given back to any command)."""
    from cmfgit.errors import AmbiguousPrefix

    out = []
    for rid in ids:
        n = minimum
        while n < len(rid):
            prefix = rid[:n]
            if sum(other.startswith(prefix) for other in ids) == 1:
                try:
                    if query.resolve_record(prefix) == rid:
                        break
                except AmbiguousPrefix:
                    pass
            n += 1
        out.append(rid[:n])
    return out
