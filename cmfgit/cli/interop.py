"""Commands of the interop area: import and export of HPE CMF metadata."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.render import print_json


@app.command("import")
def import_cmd(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="an MLMD SQLite file (cmflib's 'mlmd') or a CMF export JSON")
    ],
    pipeline: Annotated[Optional[str], typer.Option("--pipeline", "-P", help="import only this pipeline")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the import report as JSON")] = False,
) -> None:
    """Import HPE CMF metadata as records (idempotent: a second import adds nothing)."""
    from cmfgit.cmf_import import import_cmf
    from cmfgit.repo import open_repo

    report = import_cmf(open_repo(), path, pipeline)
    if as_json:
        print_json(report.as_json())
        return
    what = f"MLMD schema {report.schema_version}" if report.format == "mlmd" else "CMF export JSON"
    pipelines = ", ".join(f"{name} ({n})" for name, n in report.pipelines.items()) or "none"
    print(f"read {report.path} ({what}): {report.executions} execution(s) of pipeline(s) {pipelines}")
    print(
        f"records: {report.written} new, {report.present} already present"
        + (f", {report.kept} kept as first imported (same Execution_uuid, changed since)" if report.kept else "")
    )
    if report.artifacts:
        kinds = ", ".join(f"{t} {n}" for t, n in sorted(report.artifacts.items()))
        print(f"artifacts: {kinds}; {report.linked} found in the working tree (blake3 + md5 alias)")


@app.command("export")
def export_cmd(
    pipeline: Annotated[str, typer.Option("--pipeline", "-P", help="the pipeline to export")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="output format (cmf-json)")] = "cmf-json",
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="write to FILE instead of standard output")
    ] = None,
) -> None:
    """Export a pipeline in the JSON that 'cmf metadata export' writes."""
    from cmfgit import cmf_export
    from cmfgit.repo import open_repo

    document = cmf_export.export_cmf(open_repo(), pipeline, fmt)
    if output is None:
        sys.stdout.write(cmf_export.dumps(document) + "\n")
        return
    written = cmf_export.write(document, output)
    executions = sum(len(s["executions"]) for p in document["Pipeline"] for s in p["stages"])
    print(f"exported {executions} execution(s) of {pipeline} to {written}", file=sys.stderr)
