"""Commands for the record store: init, log-run, log, show, tag, retract, fsck, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit import logrun
from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, RefOpt, RemoteOpt
from cmfgit.cli.render import console, print_json, short
from cmfgit.errors import EXIT_ERROR, UsageError


@app.command()
def init(
    site: Annotated[
        Optional[str],
        typer.Option("--site", metavar="NAME", help="name of this site (stored per clone in git config cmfgit.site)"),
    ] = None,
    pipeline: Annotated[
        Optional[str],
        typer.Option(
            "--pipeline",
            "-P",
            metavar="NAME",
            help="default pipeline name for new records (default: the project's name)",
        ),
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


_RUN_HELP = logrun.DESCRIPTION
_RUN_EPILOG = "\b\n" + logrun.EPILOG.replace("examples:", "Examples:")


@app.command(
    "log-run",
    help=_RUN_HELP,
    epilog=_RUN_EPILOG,
    short_help="Run COMMAND and record it as one execution of a pipeline stage.",
    options_metavar="[OPTIONS] --",
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]},
)
def log_run(
    pipeline: Annotated[
        Optional[str], typer.Option("--pipeline", "-P", metavar="PIPELINE", help=logrun.HELP["pipeline"])
    ] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", "-s", metavar="STAGE", help=logrun.HELP["stage"])] = None,
    execution_type: Annotated[
        Optional[str], typer.Option("--execution-type", metavar="NAME", help=logrun.HELP["execution_type"])
    ] = None,
    input_: Annotated[
        Optional[list[str]], typer.Option("--input", "-i", metavar="PATH", help=logrun.HELP["input"])
    ] = None,
    output: Annotated[
        Optional[list[str]], typer.Option("--output", "-o", metavar="PATH", help=logrun.HELP["output"])
    ] = None,
    type_: Annotated[
        Optional[list[str]], typer.Option("--type", "-t", metavar="TYPE", help=logrun.HELP["type"])
    ] = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", "-p", metavar="KEY=VALUE", help=logrun.HELP["param"])
    ] = None,
    params_file: Annotated[
        Optional[list[str]], typer.Option("--params-file", metavar="FILE[:KEY]", help=logrun.HELP["params_file"])
    ] = None,
    metrics_file: Annotated[
        Optional[list[str]], typer.Option("--metrics-file", "-m", metavar="FILE", help=logrun.HELP["metrics_file"])
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help=logrun.HELP["commit"])] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=logrun.HELP["quiet"])] = False,
    command: Annotated[
        Optional[list[str]], typer.Argument(metavar="COMMAND", help="the command to run, and its arguments")
    ] = None,
) -> None:
    # Never run: `cmfgit log-run` is a hot command (main.py -> logrun.main), which
    # asks this declaration only to read help, errors and unusual command lines.
    raise UsageError("log-run runs through cmfgit.logrun; run 'cmfgit log-run --help'")


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
    since: Annotated[
        Optional[str],
        typer.Option("--since", metavar="DATE", help="runs started at or after DATE (2026-01-31, ...T12:00Z, 7d, 12h)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array of execution objects")] = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """List executions, newest first (or by --sort), optionally filtered with --where
    (tags too: --where 'tags.status == "prod"')."""
    from cmfgit import views
    from cmfgit.query import scope_of

    scope = scope_of(ref, all_branches, global_, remote)
    views.log(
        pipeline=pipeline, stage=stage, number=number, where=where, sort=sort, since=since, as_json=as_json, scope=scope
    )


@app.command()
def show(
    record_id: Annotated[
        str, typer.Argument(metavar="ID", help="a record id or a unique prefix of one; @N: the N-th newest run")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the execution as a JSON object")] = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Show one record in full (and an execution's current tags)."""
    from cmfgit import views
    from cmfgit.query import scope_of

    views.show(record_id, as_json=as_json, scope=scope_of(ref, all_branches, global_, remote))


@app.command()
def tag(
    target: Annotated[
        str, typer.Argument(metavar="TARGET", help="an execution id prefix or @N, an artifact hash (prefix) or a path")
    ],
    assignments: Annotated[
        Optional[list[str]], typer.Argument(metavar="[KEY=VALUE]...", help="tags to set (values are text)")
    ] = None,
    remove: Annotated[
        Optional[list[str]], typer.Option("--remove", "-d", metavar="KEY", help="remove this tag (repeatable)")
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help="commit the new annotation record (only it)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the target and its tags as JSON")] = False,
) -> None:
    """Tag an execution or an artifact, or list its tags.

    KEY=VALUE sets a tag (such as status=production), --remove KEY removes one;
    with neither, the command lists the tags.

    Records never change: each change is a small annotation record, committed,
    merged and pushed like any other, and the latest statement of a tag wins.
    """
    from cmfgit import tags as tagging
    from cmfgit.query import CmfQuery
    from cmfgit.repo import open_repo

    repo = open_repo()
    changes: dict[str, str | None] = dict(tagging.parse_assignments(assignments or []))
    for name in remove or []:
        if tagging.check_name(name) in changes:
            raise UsageError(f"tag '{name}' is both set and removed")
        changes[name] = None
    if changes:
        key, rid, now = tagging.tag(repo, target, changes, commit=commit)
    else:
        with CmfQuery(repo.require_initialized()) as q:
            key = tagging.resolve_one(q, target)
            rid, now = None, q.tags_of(key)
    if as_json:
        print_json({"target": key, "annotation": rid, "tags": now})
        return
    if changes:
        print(
            f"cmfgit: tagged {short(key) if len(key) == 64 else key[:19]}"
            + (f" ({short(rid)})" if rid else " (no change)")
        )
    for name, value in now.items():
        print(f"{name}={value}")


@app.command()
def retract(
    ids: Annotated[
        list[str], typer.Argument(metavar="ID", help="record ids or unique prefixes to withdraw", show_default=False)
    ],
    reason: Annotated[
        Optional[str], typer.Option("--reason", metavar="TEXT", help="why, kept in the retraction record")
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help="commit the retraction record (only it)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print what was retracted as JSON")] = False,
) -> None:
    """Withdraw records: they are no longer shown, merged back, pulled or exported.

    Records never change and deleting their files is not enough (a merge with a
    branch that packed them would bring them back), so a retraction is itself a
    record naming the ids it withdraws. It is permanent: once retracted, an id
    stays withdrawn in every view that holds the retraction. A commit that
    deletes record files (git revert, git rm) writes one by itself.
    """
    from cmfgit import retractions as retracting
    from cmfgit.repo import open_repo

    rid, new, already = retracting.retract(open_repo(), ids, reason=reason, commit=commit)
    if as_json:
        print_json({"retraction": rid, "retracted": new, "already_retracted": already})
        return
    if rid:
        print(f"cmfgit: retracted {len(new)} record(s) ({short(rid)}{', committed' if commit else ''})")
    for found in already:
        print(f"cmfgit: {short(found)} was already retracted")


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
