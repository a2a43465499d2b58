"""Commands of the sync area (registered on the shared app by import)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cmfgit.cli import app


# -- gc, hooks and doctor (cmfgit/gc.py, cmfgit/hooks.py, cmfgit/doctor.py) ------------------


@app.command()
def gc() -> None:
    """Fold loose records into packs (.cmf/objects/pack/<site>/<period>.yaml).

    Also runs by itself past gc.threshold loose records (.cmf/config.yaml), from
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
    print(f" and {result.removed_temps} stale temp file(s)" if result.removed_temps else "")
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
