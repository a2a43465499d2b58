"""Commands of the query area: lineage, diff, artifacts, pipelines (and the read scopes).

Every read command (these, and ``log``/``show`` in records.py) takes the same
scope options: the checkout by default, ``--ref REF``, ``--all-branches`` or
``--global``. The JSON shapes are documented in docs/json.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cmfgit.cli import app

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

    return CmfQuery(scope=scope_of(ref, all_branches, global_, remote))


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="a path, an artifact hash (prefix), an execution id (prefix) or @N")],
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
    a: Annotated[str, typer.Argument(metavar="A", help="an execution id (prefix), or @N: the N-th newest run")],
    b: Annotated[str, typer.Argument(metavar="B", help="another execution id (prefix) or @N")],
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Compare two executions side by side: params, metrics, inputs, outputs and code."""
    from cmfgit import views
    from cmfgit.query import scope_of

    views.diff(a, b, as_json=as_json, scope=scope_of(ref, all_branches, global_, remote))


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
    from cmfgit import views
    from cmfgit.query import scope_of

    views.artifacts(
        type_=type_,
        pipeline=pipeline,
        number=number,
        as_json=as_json,
        scope=scope_of(ref, all_branches, global_, remote),
    )


@app.command()
def pipelines(
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """List pipelines and their stages, with execution counts and the last run."""
    from cmfgit import views
    from cmfgit.query import scope_of

    views.pipelines(as_json=as_json, scope=scope_of(ref, all_branches, global_, remote))
