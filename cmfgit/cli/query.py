"""Commands of the query area: lineage, diff, artifacts, pipelines (and the read scopes).

Every read command (these, and ``log``/``show`` in records.py) takes the same
scope options: the checkout by default, ``--ref REF``, ``--all-branches`` or
``--global``. The JSON shapes are documented in docs/json.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.render import console, fmt_mapping, fmt_time, fmt_value, print_json, short

RefOpt = Annotated[
    Optional[str], typer.Option("--ref", metavar="REF", help="read the records of a branch, tag or commit")
]
AllBranchesOpt = Annotated[
    bool, typer.Option("--all-branches", help="read the records of every local branch (and the checkout)")
]
GlobalOpt = Annotated[
    bool,
    typer.Option("--global", help="read the global metadata branch (<remote>/cmf/global), fetched beforehand"),
]
RemoteOpt = Annotated[Optional[str], typer.Option("--remote", help="remote of --global (default: origin)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (shapes in docs/json.md)")]


def open_query(ref: str | None, all_branches: bool, global_: bool, remote: str | None) -> Any:
    from cmfgit.query import CmfQuery, scope_of
    from cmfgit.repo import open_repo

    return CmfQuery(open_repo(), scope=scope_of(ref, all_branches, global_, remote))


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="a path, an artifact hash (prefix) or an execution id (prefix)")],
    up: Annotated[bool, typer.Option("--up", help="what it was made from (the default)")] = False,
    down: Annotated[bool, typer.Option("--down", help="what was made from it")] = False,
    both: Annotated[bool, typer.Option("--both", help="both directions")] = False,
    depth: Annotated[
        Optional[int], typer.Option("--depth", min=0, help="at most N execution hops (default: all)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="tree, json, mermaid or dot")] = "tree",
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Show where an artifact or execution came from (--up) or what came of it (--down)."""
    from cmfgit import views
    from cmfgit.query import scope_of

    views.lineage(
        target,
        up=up,
        down=down,
        both=both,
        depth=depth,
        fmt=fmt,
        as_json=as_json,
        scope=scope_of(ref, all_branches, global_, remote),
    )


@app.command()
def diff(
    a: Annotated[str, typer.Argument(metavar="A", help="an execution id (prefix)")],
    b: Annotated[str, typer.Argument(metavar="B", help="another execution id (prefix)")],
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Compare two executions side by side: params, metrics, inputs, outputs and code."""
    with open_query(ref, all_branches, global_, remote) as q:
        result = q.diff(a, b)
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
    for section in ("inputs", "outputs"):
        for row in result[section]:
            table.add_row(
                f"{section[:-1]} {row['path']}",
                mark(row["changed"], (row["a"] or "-")[:19]),
                mark(row["changed"], (row["b"] or "-")[:19]),
            )
    console().print(table)


def _code(side: dict[str, Any]) -> str:
    commit = (side.get("commit") or "-")[:12]
    return commit + (" (dirty)" if side.get("dirty") else "")


def _opt(value: Any) -> str:
    return "-" if value is None else fmt_value(value)


@app.command()
def artifacts(
    type_: Annotated[Optional[str], typer.Option("--type", "-t", help="only artifacts of this type")] = None,
    pipeline: Annotated[Optional[str], typer.Option("--pipeline", "-P", help="only those a pipeline used")] = None,
    number: Annotated[Optional[int], typer.Option("-n", "--max-count", min=0, help="at most N artifacts")] = None,
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """List artifacts (datasets, models, metrics...), most recently used first."""
    with open_query(ref, all_branches, global_, remote) as q:
        found = q.artifacts(type=type_, pipeline=pipeline, limit=number)
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


@app.command()
def pipelines(
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """List pipelines and their stages, with execution counts and the last run."""
    with open_query(ref, all_branches, global_, remote) as q:
        found = q.pipelines()
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
