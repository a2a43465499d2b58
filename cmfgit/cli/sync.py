"""Commands of the sync area (registered on the shared app by import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cmfgit.cli import app

# -- push, pull and the global view (cmfgit/sync.py, cmfgit/globalview.py) -----------------


@app.command()
def push(
    remote: Annotated[Optional[str], typer.Argument(help="remote to push to (default: the branch's or origin)")] = None,
    data: Annotated[
        Optional[bool],
        typer.Option("--data/--no-data", help="also push artifact bytes (default: when a default data remote is set)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print what happened as JSON")] = False,
) -> None:
    """Commit pending records, push the branch and this site's ref, and update the global view.

    One git push carries the branch and refs/cmf/sites/<site>, the site's own
    ref: it only fast-forwards from this site, so the metadata is published
    however many sites push at once, and even when the branch cannot be
    pushed. When the remote branch moved on, it is merged (through the merge
    driver) and pushed again, unless that would stop on conflicts in your code:
    then nothing is merged, and the command says what to do and exits 1.
    cmf/global, the union of every site's records, is updated unless the
    central's post-receive hook already did.
    """
    from cmfgit import pushrun

    pushrun.run(remote, data, as_json)


@app.command()
def pull(
    remote: Annotated[Optional[str], typer.Argument(help="remote to pull from (default: the branch's)")] = None,
    pipeline: Annotated[
        Optional[list[str]], typer.Option("--pipeline", "-P", help="records of this pipeline (repeatable)")
    ] = None,
    stage: Annotated[Optional[list[str]], typer.Option("--stage", "-s", help="runs of this stage (repeatable)")] = None,
    run: Annotated[
        Optional[list[str]], typer.Option("--run", metavar="ID", help="this run: an id or a prefix (repeatable)")
    ] = None,
    tag: Annotated[
        Optional[list[str]],
        typer.Option(
            "--tag",
            "-t",
            metavar="KEY=VALUE",
            help="runs tagged so, or that read or wrote an artifact tagged so (repeated: all of them, AND)",
        ),
    ] = None,
    artifact: Annotated[
        Optional[list[str]],
        typer.Option("--artifact", "-a", help="runs that read or wrote this artifact: a path or a hash (repeatable)"),
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option("--since", metavar="DATE", help="runs started at or after DATE (2026-01-31, ...T12:00Z, 7d, 12h)"),
    ] = None,
    with_lineage: Annotated[
        bool, typer.Option("--with-lineage", help="also bring the ancestors (producers of their inputs, recursively)")
    ] = False,
    with_data: Annotated[
        bool,
        typer.Option("--with-data", help="also fetch the selected runs' artifacts and place them at their paths"),
    ] = False,
) -> None:
    """Pull the branch, then bring records from the global view into this clone.

    With no filter the whole global view is brought. Filters of different
    kinds combine with AND. Records brought in are pending: the next commit
    (the hooks) or 'cmfgit push' commits them.
    """
    from cmfgit import views
    from cmfgit.repo import open_repo

    selection = views.pull(remote, pipeline, artifact, since, with_lineage, stage, tag, run)
    if with_data:
        _pull_data(open_repo(), selection, artifact, since)


def _pull_data(repo: Any, selection: Any, artifact: list[str] | None, since: str | None) -> None:
    """Fetch the selected runs' artifacts from the default data remote and place them."""
    from cmfgit.data import ops
    from cmfgit.data.selection import Query
    from cmfgit.data.transfer import DEFAULT_JOBS

    query = Query(
        runs=selection.runs,
        pipelines=selection.pipelines,
        stages=selection.stages,
        tags=selection.tags,
        artifacts=tuple(artifact or ()),
        since=since,
        with_lineage=selection.with_lineage,
    )
    data = ops.pull(repo, query, None, DEFAULT_JOBS, force=False)
    print(
        f"data       {data.fetched.remote}: fetched {data.fetched.fetched:,} object(s);"
        f" placed {len(data.placed.placed)} path(s), {len(data.placed.unchanged)} unchanged"
    )


global_app = typer.Typer(
    name="global",
    help="The global metadata view: the branch cmf/global, the union of every site's records.",
    no_args_is_help=True,
)
app.add_typer(global_app, name="global")


@global_app.command("update")
def global_update(
    repo_dir: Annotated[
        Optional[Path], typer.Option("--repo", help="the repository (default: the current directory; may be bare)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print nothing when all goes well")] = False,
) -> None:
    """Union the records of every branch and site ref into cmf/global, in this repository.

    Meant for the central (bare) repository, e.g. from its post-receive hook
    ('cmfgit global install-hook'). Concurrent runs queue on a lock.
    """
    from cmfgit import globalview

    result = globalview.update_local(globalview.git_dir_of(repo_dir or Path.cwd()))
    _report_skipped(result.skipped)  # even with --quiet: something is wrong
    if quiet:
        return
    if result.new is None and result.old is None:
        print("no branch has records yet: cmf/global not created")
    elif result.new is None:
        print(f"cmf/global is up to date: {result.records} record(s)")
    else:
        print(f"cmf/global: +{result.added} record(s), {result.records} in all ({result.new[:12]})")


@global_app.command("install-hook")
def global_install_hook(
    repo_dir: Annotated[
        Optional[Path], typer.Option("--repo", help="the central repository (default: the current directory)")
    ] = None,
) -> None:
    """Install the post-receive hook that keeps cmf/global up to date in a central (bare) repository.

    After every push of a branch or a site ref, the hook unions every branch
    and every refs/cmf/sites/* into cmf/global (concurrent pushes queue on a
    lock). A post-receive hook already there is kept as post-receive.legacy
    and still runs, first. cmfgit must stay installed where the hook runs.
    """
    from cmfgit import globalview, siterefs

    path = siterefs.install_hook(globalview.git_dir_of(repo_dir or Path.cwd()))
    print(f"installed  {path}")


@global_app.command("fetch")
def global_fetch(
    remote: Annotated[Optional[str], typer.Argument(help="remote to read (default: the branch's or origin)")] = None,
) -> None:
    """Fetch the remote's global view: cmf/global and every site ref, united here.

    What 'cmfgit log --global' (and the other read commands) then read; it
    writes nothing in the working tree ('cmfgit pull' brings records into it).
    """
    from cmfgit import siterefs, sync
    from cmfgit.repo import open_repo

    repo = open_repo()
    name = sync.resolve_remote(repo, remote, sync.current_branch(repo))
    view = siterefs.fetch_view(repo.root, repo.common_dir, name)
    _report_skipped(view.skipped)
    if view.commit is None:
        print(f"global     {name} has no global view yet (run 'cmfgit push' at a site)")
        return
    print(f"global     {name}: {view.records} record(s), from cmf/global and {view.sites} site ref(s)")


# -- gc, hooks and doctor (cmfgit/gc.py, cmfgit/hooks.py, cmfgit/doctor.py) ------------------


@app.command()
def gc() -> None:
    """Fold loose records into packs (.cmf/objects/pack/<site>/<period>-<hash>.yaml).

    Packs are written once and named by their content, so branches that both
    ran gc merge with plain git; small packs are rolled into bigger ones. Also
    runs by itself past gc.threshold loose records (.cmf/config.yaml), from
    the pre-commit hook and after 'log-run --commit'. The packs and the removed
    loose files are committed with the next commit (or 'cmfgit push').
    """
    from cmfgit import gc as gc_core
    from cmfgit.errors import EXIT_ERROR
    from cmfgit.repo import open_repo

    result = gc_core.gc(open_repo())
    for problem in result.problems:
        print(f"cmfgit: {problem}")
    packs = f" into {len(result.packs)} pack(s)" if result.packs else ""
    print(f"gc: packed {result.packed} record(s){packs}; removed {result.removed_loose} loose file(s)", end="")
    print(f" and {result.removed_temps} stale temp file(s)" if result.removed_temps else "", end="")
    print(f"; folded {result.repacked} small pack(s) into bigger ones" if result.repacked else "", end="")
    # A record that would be half its pack or more stays loose (docs/merging.md, packs).
    print(f"; left {result.kept_loose} record(s) loose until their pack grows" if result.kept_loose else "")
    if result.problems:
        raise typer.Exit(EXIT_ERROR)


hooks_app = typer.Typer(
    name="hooks",
    help="The git hooks that commit pending records with your commits and keep them valid.",
    no_args_is_help=True,
)
app.add_typer(hooks_app, name="hooks")


@hooks_app.command("install")
def hooks_install() -> None:
    """Install the hooks (into 'git rev-parse --git-path hooks'); existing hooks are kept and chained."""
    from cmfgit import hooks
    from cmfgit.repo import open_repo

    repo = open_repo()
    changed = hooks.install(repo)
    for item in changed:
        print(f"installed  {item}")
    if not changed:
        print(f"hooks already installed in {hooks.hooks_dir(repo)}")


@hooks_app.command("uninstall")
def hooks_uninstall() -> None:
    """Remove cmfgit's hooks and restore the hooks they chained."""
    from cmfgit import hooks
    from cmfgit.repo import find_repo

    changed = hooks.uninstall(find_repo())
    for item in changed:
        print(f"removed    {item}")
    if not changed:
        print("no cmfgit hooks installed")


@hooks_app.command("status")
def hooks_status(
    as_json: Annotated[bool, typer.Option("--json", help="print the state of each hook as JSON")] = False,
) -> None:
    """Show which hooks are installed, and which chain a previous hook."""
    from cmfgit import hooks
    from cmfgit.cli.render import print_json
    from cmfgit.repo import find_repo

    states = hooks.status(find_repo())
    if as_json:
        print_json([{"name": h.name, "state": h.state, "legacy": h.legacy, "path": str(h.path)} for h in states])
        return
    for h in states:
        chained = f" (runs {h.name}.legacy first)" if h.legacy and h.state != "foreign" else ""
        print(f"{h.name:<14} {h.state}{chained}")


@app.command()
def doctor(
    remote: Annotated[
        Optional[str], typer.Option("--remote", help="remote to compare with (default: the branch's)")
    ] = None,
    fsck: Annotated[bool, typer.Option("--fsck", help="also verify every record (slower)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check the clone: merge driver, hooks, pending records, packs, remote and the global view.

    Exits 1 if something needs fixing; each problem says what to run.
    """
    from cmfgit.cli.render import print_json
    from cmfgit.doctor import diagnose
    from cmfgit.errors import EXIT_ERROR
    from cmfgit.repo import find_repo

    report = diagnose(find_repo(), remote, run_fsck=fsck)
    if as_json:
        print_json(report.as_json())
    else:
        marks = {"ok": "ok   ", "warn": "warn ", "error": "ERROR"}
        for check in report.checks:
            fix = f"  -> {check.fix}" if check.fix and check.status != "ok" else ""
            print(f"{marks[check.status]} {check.name:<13} {check.detail}{fix}")
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)


def _report_skipped(skipped: list[str]) -> None:
    from cmfgit.pushrun import report_skipped

    report_skipped(skipped)


def _pending(what: str) -> str:
    from cmfgit.views import pending

    return pending(what)
