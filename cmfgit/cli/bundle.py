"""The bundle commands: a site's records (and artifact bytes) in one file, and importing it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.data import (
    ArtifactOpt,
    JsonOpt,
    LineageOpt,
    PipelineOpt,
    SinceOpt,
    StageOpt,
    TargetsArg,
    _query,
)
from cmfgit.cli.render import print_json
from cmfgit.fastdata import size_text as _size

bundle_app = typer.Typer(
    name="bundle",
    help="Offline sites: a site's records (and artifact bytes) in one file, imported elsewhere like a push.",
    no_args_is_help=True,
)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("create")
def bundle_create(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="the bundle file to write (replaced if it exists)")],
    targets: TargetsArg = None,
    pipeline: PipelineOpt = None,
    stage: StageOpt = None,
    artifact: ArtifactOpt = None,
    since: SinceOpt = None,
    with_lineage: LineageOpt = False,
    with_data: Annotated[
        bool, typer.Option("--with-data/--no-data", help="also carry the selected artifacts' bytes from the cache")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the selected records (default: every record here) into FILE, for removable media or a one-way link.

    The selection is that of 'cmfgit artifact push'; the annotations of the
    selected runs and every retraction come along. The records travel as a
    git bundle of refs/cmf/bundle/SITE; with --with-data the artifact objects
    travel too, straight from the data cache (or from their recorded paths
    while these still hold the recorded bytes).
    """
    from cmfgit import bundle
    from cmfgit.repo import open_read_repo

    query = _query(targets, pipeline, stage, artifact, since, with_lineage)
    result = bundle.create(open_read_repo(), file, query, with_data=with_data)
    if as_json:
        print_json(result.as_json())
        return
    for art in result.unavailable:
        print(f"not here   {art.path} ({art.hash[:19]}): not in the cache, and the path holds other bytes")
    data = f", {result.objects:,} object(s) ({_size(result.data_bytes)})" if with_data else ""
    print(f"bundle     {result.path}: {result.records:,} record(s){data} from site {result.site}, {_size(result.size)}")


@bundle_app.command("import")
def bundle_import(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a file written by 'cmfgit bundle create'")],
    with_data: Annotated[
        bool, typer.Option("--with-data/--no-data", help="bring the bundle's artifact objects into the cache")
    ] = True,
    remote: Annotated[
        Optional[str],
        typer.Option("--remote", "-r", help="also upload the objects to this data remote (a name, a URL or a path)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a bundle like a push: every byte is checked before anything is written.

    In a bare (central) repository the records join the site's ref
    refs/cmf/sites/SITE and cmf/global; in a clone they are written as
    pending records, as 'cmfgit pull' writes them. Importing a bundle twice
    changes nothing.
    """
    from cmfgit import bundle
    from cmfgit.cli.sync import _report_skipped
    from cmfgit.repo import open_read_repo

    result = bundle.import_bundle(open_read_repo(), file, with_data=with_data, remote_name=remote)
    _report_skipped(result.skipped)
    if as_json:
        print_json(result.as_json())
        return
    if result.nothing_new:
        print(f"nothing new: the {result.records:,} record(s) and {result.objects:,} object(s) of {file} are here")
        return
    if result.bare:
        site = f"+{result.site_added:,} record(s)" if result.site_ref in result.updated else "already up to date"
        print(f"site       {result.site_ref}: {site}")
        print(f"global     cmf/global: +{result.global_added:,} record(s), {result.global_records:,} in the view")
    else:
        pending = " (pending: commit them, or run 'cmfgit push')" if result.written else ""
        print(f"records    {result.written:,} new record(s) of {result.records:,} written{pending}")
    if not result.data_skipped and result.objects:
        already = result.objects - result.stored
        print(f"data       {result.stored:,} new object(s) in the cache, {already:,} already there")
    if result.remote is not None:
        print(f"data       {result.remote}: uploaded {result.uploaded:,} object(s)")
