"""Commands for the record store: init, log-run, log, show, fsck, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, RefOpt, RemoteOpt
from cmfgit.cli.render import console, fmt_mapping, fmt_time, print_json, short
from cmfgit.errors import EXIT_ERROR


@app.command()
def init(
    site: Annotated[
        Optional[str],
        typer.Option("--site", metavar="NAME", help="name of this site (stored per clone in git config cmfgit.site)"),
    ] = None,
    pipeline: Annotated[
        Optional[str], typer.Option("--pipeline", "-P", metavar="NAME", help="default pipeline name for new records")
    ] = None,
) -> None:
    """Set up cmfgit in this git repository; safe to run again, in a fresh clone too."""
    from cmfgit.init import init as do_init

    result = do_init(site=site, pipeline=pipeline)
    out = console()
    for item in result.created:
        out.print(f"created    {item}")
    for item in result.configured:
        out.print(f"configured {item}")
    if not result.created and not result.configured:
        out.print(f"cmfgit is already set up in {result.repo.root}")
    elif result.created:
        out.print("next: git add .cmf .gitattributes && git commit -m 'Track metadata with cmfgit'")


@app.command(
    "log-run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
def log_run(ctx: typer.Context) -> None:
    """Run a command and record it as one execution (see 'cmfgit log-run --help')."""
    from cmfgit import logrun

    raise typer.Exit(logrun.main(list(ctx.args)))


@app.command("log")
def log_cmd(
    pipeline: Annotated[
        Optional[str], typer.Option("--pipeline", "-P", metavar="NAME", help="only this pipeline")
    ] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", "-s", metavar="NAME", help="only this stage")] = None,
    number: Annotated[
        Optional[int], typer.Option("-n", "--max-count", metavar="N", help="show at most N executions")
    ] = None,
    where: Annotated[
        Optional[str],
        typer.Option("--where", "-w", metavar="EXPR", help="filter, e.g. 'params.lr >= 0.01 and metrics.acc > 0.9'"),
    ] = None,
    sort: Annotated[
        Optional[str],
        typer.Option("--sort", metavar="KEY", help="sort by a field, e.g. metrics.acc; -KEY for descending"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array of execution objects")] = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """List executions, newest first (or by --sort), optionally filtered with --where."""
    from cmfgit import reading
    from cmfgit.query import scope_of
    from cmfgit.repo import open_repo

    scope = scope_of(ref, all_branches, global_, remote)
    found = reading.executions(open_repo(), pipeline, stage, number, where=where, sort=sort, scope=scope)
    if as_json:
        print_json([reading.as_json(rid, rec) for rid, rec in found])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("id", "started (UTC)", "pipeline/stage", "exit", "params", "metrics"):
        table.add_column(column, overflow="fold")
    for rid, rec in found:
        code = rec.get("exit_code")
        table.add_row(
            short(rid),
            fmt_time(rec.get("started_at")),
            f"{rec.get('pipeline')}/{rec.get('stage')}",
            "-" if code is None else str(code),
            fmt_mapping(rec.get("params") or {}),
            fmt_mapping(rec.get("metrics") or {}),
        )
    if found:
        console().print(table)
    elif where or pipeline or stage:
        console().print("no executions match")
    else:
        console().print("no executions recorded yet")


@app.command()
def show(
    record_id: Annotated[str, typer.Argument(metavar="ID", help="a record id or a unique prefix of one")],
    as_json: Annotated[bool, typer.Option("--json", help="print the execution as a JSON object")] = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Show one record in full."""
    from cmfgit import canonical, reading
    from cmfgit.query import scope_of
    from cmfgit.repo import open_repo

    rid, record = reading.show(open_repo(), record_id, scope=scope_of(ref, all_branches, global_, remote))
    if as_json:
        print_json(reading.as_json(rid, record))
        return
    print(f"id: {rid}")
    print(canonical.dump(record).decode("utf-8"), end="")


@app.command()
def fsck() -> None:
    """Verify every record: its hash, its canonical form and its schema.

    Exits 1 and names each bad file.
    """
    from cmfgit import reading
    from cmfgit.repo import open_repo

    report = reading.fsck(open_repo())
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"fsck: {len(report.problems)} problem(s) in {report.checked} record(s)")
        raise typer.Exit(EXIT_ERROR)
    print(f"fsck: {report.checked} record(s) ok")


@app.command()
def demo(
    directory: Annotated[
        Optional[Path], typer.Option("--dir", metavar="DIR", help="where to build the demo (default: a new temp dir)")
    ] = None,
) -> None:
    """Run a real multi-stage, multi-site pipeline in fresh git repos and show what was recorded."""
    from cmfgit.demo import run_demo

    run_demo(directory)
