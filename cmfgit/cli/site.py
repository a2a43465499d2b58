"""The site command: the web UI's pages as a static site (cmfgit/ui/site.py builds it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, JsonOpt, RefOpt, RemoteOpt
from cmfgit.cli.render import print_json

site_app = typer.Typer(
    name="site",
    help="Publish the web UI's pages as static files (they open from file:// and any static host).",
    no_args_is_help=True,
)
app.add_typer(site_app, name="site")


@site_app.command("build")
def site_build(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="the folder to write (a previous site is replaced)")],
    where: Annotated[
        Optional[str],
        typer.Option(
            "--where", "-w", metavar="EXPR", help="only the executions this selects, e.g. 'stage == \"train\"'"
        ),
    ] = None,
    pipeline: Annotated[
        Optional[str], typer.Option("--pipeline", "-P", metavar="NAME", help="only this pipeline's executions")
    ] = None,
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Write the runs, run, compare, lineage, artifact and pipeline pages of the records into DIR.

    Open DIR/index.html in a browser (no server needed), or publish DIR on any
    static host (GitHub Pages, GitLab Pages). The build writes beside DIR and
    renames it into place; it replaces DIR only if DIR is empty or a site built
    before.
    """
    from cmfgit.query import scope_of
    from cmfgit.ui import site

    report = site.build(directory, scope=scope_of(ref, all_branches, global_, remote), where=where, pipeline=pipeline)
    if as_json:
        print_json(
            {
                "path": str(report.path),
                "executions": report.runs,
                "files": report.files,
                "bytes": report.bytes,
                "seconds": round(report.seconds, 3),
            }
        )
        return
    print(
        f"wrote {report.path}: {report.runs} execution(s), {report.files} files, "
        f"{report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s; open {report.path / 'index.html'}"
    )
