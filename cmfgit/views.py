"""What the read commands print (log, show, lineage, diff, artifacts, pipelines), and their output helpers.

Plain functions without typer: the typer commands in ``cli/`` call them, and so
does the fast path (``fastread.py``) that runs the common read commands without
importing typer and pydantic (~0.25 s of start-up). rich is imported only to draw.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from cmfgit.index import Scope
    from cmfgit.query import CmfQuery


def console() -> Console:
    """stdout for people. Piped into a file or another program, tables keep their
    natural width instead of wrapping at 80 columns."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=False)
    return Console(highlight=False, soft_wrap=False, width=100_000, no_color=True)


def print_json(value: Any) -> None:
    """Stable JSON on stdout: sorted keys, two-space indent, UTF-8."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def short(rid: str) -> str:
    return rid[:12]


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fmt_mapping(values: dict[str, Any], limit: int = 4) -> str:
    items = [f"{k}={fmt_value(v)}" for k, v in sorted(values.items())]
    if len(items) > limit:
        items = items[:limit] + [f"+{len(items) - limit}"]
    return " ".join(items)


def fmt_time(ts: str | None) -> str:
    return (ts or "")[:19].replace("T", " ")


def _query(scope: Scope | None) -> CmfQuery:
    """The query over ``scope`` for a read command; it warns itself (see :func:`_warn`)."""
    from cmfgit.query import CmfQuery
    from cmfgit.repo import open_repo

    return CmfQuery(open_repo(), scope=scope, warn=False)


def _warn(q: CmfQuery) -> None:
    """One line on stderr, every time, when records of the scope could not be read."""
    bad = q.unreadable()
    if bad:
        from cmfgit.query import unreadable_note

        print(f"cmfgit: warning: {unreadable_note(bad)}", file=sys.stderr)


def log(
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    number: int | None = None,
    where: str | None = None,
    sort: str | None = None,
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit log``: executions as a table, or as a JSON array."""
    with _query(scope) as q:
        found = q.execution_records(where, pipeline=pipeline, stage=stage, sort=sort, limit=number)
        objects = q.as_objects(found)
        _warn(q)
    if as_json:
        print_json(objects)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    tagged = any(obj["tags"] for obj in objects)
    for column in ("id", "started (UTC)", "pipeline/stage", "exit", "params", "metrics") + (
        ("tags",) if tagged else ()
    ):
        table.add_column(column, overflow="fold")
    for obj in objects:
        code = obj.get("exit_code")
        table.add_row(
            short(obj["id"]),
            fmt_time(obj.get("started_at")),
            f"{obj.get('pipeline')}/{obj.get('stage')}",
            "-" if code is None else str(code),
            fmt_mapping(obj.get("params") or {}),
            fmt_mapping(obj.get("metrics") or {}),
            *((fmt_mapping(obj["tags"]),) if tagged else ()),
        )
    if objects:
        console().print(table)
    elif where or pipeline or stage:
        console().print("no executions match")
    else:
        console().print("no executions recorded yet")


def show(record_id: str, *, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit show``: one record in full (and an execution's current tags)."""
    from cmfgit import canonical

    with _query(scope) as q:
        rid, record = q.record(record_id)
        obj = q.as_object(rid, record)
        _warn(q)
    if as_json:
        print_json(obj)
        return
    print(f"id: {rid}")
    if obj.get("tags"):
        print(f"tags: {fmt_mapping(obj['tags'])}")
    print(canonical.dump(record).decode("utf-8"), end="")


def lineage(
    target: str,
    *,
    up: bool = False,
    down: bool = False,
    both: bool = False,
    depth: int | None = None,
    fmt: str = "tree",
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit lineage``: a rich tree, JSON, Mermaid or DOT."""
    from cmfgit import lineage as lin
    from cmfgit.errors import UsageError

    if as_json:
        fmt = "json"
    if fmt not in lin.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(lin.FORMATS)}")
    chosen = [name for name, on in (("up", up), ("down", down), ("both", both)) if on]
    if len(chosen) > 1:
        raise UsageError("choose one of --up, --down, --both")
    direction = chosen[0] if chosen else "up"
    with _query(scope) as q:
        roots, understood = lin.resolve_target(q, target)
        result, graph = q.lineage(roots, direction, depth)
        _warn(q)
    if fmt == "json":
        print_json(lin.to_json(result, graph))
    elif fmt == "mermaid":
        print(lin.to_mermaid(result, graph), end="")
    elif fmt == "dot":
        print(lin.to_dot(result, graph), end="")
    else:
        out = console()
        out.print(f"[dim]{understood}[/]")
        out.print(lin.to_tree(result, graph))


def diff(a: str, b: str, *, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit diff``: two executions side by side."""
    from cmfgit.query import diff_executions

    with _query(scope) as q:
        sides = {"a": q.execution(a), "b": q.execution(b)}
        _warn(q)
    result = diff_executions(sides["a"], sides["b"])
    # Paths a side recorded without a hash: an output that was not created.
    missing = {
        side: {str(i.get("path")) for key in ("inputs", "outputs") for i in rec.get(key) or () if not i.get("hash")}
        for side, rec in sides.items()
    }
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("")
    table.add_column(f"A {short(result['a']['id'])}", overflow="fold")
    table.add_column(f"B {short(result['b']['id'])}", overflow="fold")

    def mark(changed: bool, text: str) -> str:
        return f"[yellow]{text}[/]" if changed else text

    for key in ("pipeline", "stage", "started_at", "exit_code", "site"):
        va, vb = result["a"][key], result["b"][key]
        table.add_row(key, mark(va != vb, fmt_value(va)), mark(va != vb, fmt_value(vb)))
    code = result["code"]
    table.add_row(
        "code",
        mark(code["changed"], _code(code["a"])),
        mark(code["changed"], _code(code["b"])),
    )
    for section in ("params", "metrics"):
        for row in result[section]:
            table.add_row(
                f"{section}.{row['key']}",
                mark(row["changed"], _opt(row["a"])),
                mark(row["changed"], _opt(row["b"])),
            )

    def art(side: str, row: dict[str, Any]) -> str:
        if row[side]:
            return str(row[side])[:19]
        return "(missing)" if row["path"] in missing[side] else "-"

    for section in ("inputs", "outputs"):
        for row in result[section]:
            table.add_row(
                f"{section[:-1]} {row['path']}",
                mark(row["changed"], art("a", row)),
                mark(row["changed"], art("b", row)),
            )
    console().print(table)


def _code(side: dict[str, Any]) -> str:
    commit = (side.get("commit") or "-")[:12]
    return commit + (" (dirty)" if side.get("dirty") else "")


def _opt(value: Any) -> str:
    return "-" if value is None else fmt_value(value)


def artifacts(
    *,
    type_: str | None = None,
    pipeline: str | None = None,
    number: int | None = None,
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit artifacts``: artifacts, most recently used first."""
    with _query(scope) as q:
        found = q.artifacts(type=type_, pipeline=pipeline, limit=number)
        _warn(q)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("no artifacts recorded")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    tagged = any(art["tags"] for art in found)
    for column in ("hash", "type", "path", "made by", "used by", "last used (UTC)") + (("tags",) if tagged else ()):
        table.add_column(column, overflow="fold")
    for art in found:
        paths = art["paths"]
        table.add_row(
            art["hash"][:19],
            art["type"] or "-",
            (paths[0] if paths else "-") + (f" +{len(paths) - 1}" if len(paths) > 1 else ""),
            str(len(art["producers"])),
            str(len(art["consumers"])),
            fmt_time(art["last_seen"]),
            *((fmt_mapping(art["tags"]),) if tagged else ()),
        )
    console().print(table)


def pipelines(*, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit pipelines``: pipelines and stages with counts and the last run."""
    with _query(scope) as q:
        found = q.pipelines()
        _warn(q)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("no executions recorded yet")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("pipeline / stage", "executions", "failed", "last run (UTC)"):
        table.add_column(column)
    for p in found:
        table.add_row(f"[bold]{p['pipeline']}[/]", str(p["executions"]), str(p["failed"]), fmt_time(p["last_run"]))
        for s in p["stages"]:
            table.add_row(f"  {s['stage']}", str(s["executions"]), str(s["failed"]), fmt_time(s["last_run"]))
    console().print(table)
