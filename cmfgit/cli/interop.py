"""Commands of the interop area: import and export of HPE CMF metadata, export to OpenLineage and PROV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, RefOpt, RemoteOpt
from cmfgit.cli.render import print_json


@app.command("import")
def import_cmd(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="an MLMD SQLite file (cmflib's 'mlmd') or a CMF export JSON; or the word dvc or mlflow",
        ),
    ],
    source: Annotated[
        Optional[str],
        typer.Argument(
            metavar="SOURCE",
            help="dvc: the DVC project's directory (default: .); mlflow: the mlruns directory or "
            "sqlite file, or a file:// or sqlite:/// URI (default: $MLFLOW_TRACKING_URI, ./mlruns, ./mlflow.db)",
        ),
    ] = None,
    pipeline: Annotated[
        Optional[str],
        typer.Option(
            "--pipeline",
            "-P",
            help="import only this pipeline (dvc: the pipeline to record under; mlflow: this experiment)",
        ),
    ] = None,
    all_commits: Annotated[
        bool, typer.Option("--all-commits", help="dvc: every value each stage had in dvc.lock's history")
    ] = False,
    no_artifacts: Annotated[
        bool, typer.Option("--no-artifacts", help="mlflow: do not hash the runs' artifact files")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the import report as JSON")] = False,
) -> None:
    """Import HPE CMF metadata as records (idempotent: a second import adds nothing).

    'cmfgit import dvc [SOURCE]' imports the stages of a DVC project's dvc.lock as executions:
    those of HEAD's lock, or with --all-commits each value of each stage in its git history.
    'cmfgit import mlflow [SOURCE]' imports the runs of an MLflow file store or sqlite database:
    experiments become pipelines, runs executions, their tags cmfgit tags."""
    from cmfgit.cmf_import import import_cmf
    from cmfgit.errors import UsageError
    from cmfgit.repo import open_repo

    if path == "dvc":  # as typed: ./dvc is a file named dvc
        if no_artifacts:
            raise UsageError("--no-artifacts goes with 'cmfgit import mlflow'")
        _import_dvc(Path(source or "."), pipeline, all_commits, as_json)
        return
    if path == "mlflow":  # ./mlflow is a file named mlflow
        if all_commits:
            raise UsageError("--all-commits goes with 'cmfgit import dvc'")
        _import_mlflow(source, pipeline, not no_artifacts, as_json)
        return
    if no_artifacts:
        raise UsageError("--no-artifacts goes with 'cmfgit import mlflow'")
    if all_commits:
        raise UsageError("--all-commits goes with 'cmfgit import dvc'")
    if source is not None:
        raise UsageError("SOURCE goes with 'cmfgit import dvc' or 'cmfgit import mlflow'")

    report = import_cmf(open_repo(), Path(path), pipeline)
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


def _import_dvc(project: Path, pipeline: str | None, all_commits: bool, as_json: bool) -> None:
    from cmfgit.importers.dvc import import_dvc
    from cmfgit.repo import open_repo

    report = import_dvc(open_repo(), project, pipeline, all_commits)
    if as_json:
        print_json(report.as_json())
        return
    stages = ", ".join(f"{name} ({n})" for name, n in report.stages.items()) or "none"
    print(
        f"read dvc.lock at {report.commits} commit(s) of {report.path}: "
        f"{report.executions} execution(s) of stage(s) {stages}"
    )
    print(
        f"records: {report.written} new, {report.present} already present"
        + (f", {report.kept} kept as first imported (changed since)" if report.kept else "")
    )
    print(f"artifacts: {report.linked} found with their bytes (blake3 + md5 alias)")


def _import_mlflow(source: str | None, pipeline: str | None, artifacts: bool, as_json: bool) -> None:
    from cmfgit.importers.mlflow import import_mlflow
    from cmfgit.repo import open_repo

    report = import_mlflow(open_repo(), source, pipeline, artifacts)
    if as_json:
        print_json(report.as_json())
        return
    pipelines = ", ".join(f"{name} ({n})" for name, n in report.pipelines.items()) or "none"
    kind = "file store" if report.store == "file" else "sqlite database"
    print(f"read {report.path} (MLflow {kind}): {report.runs} run(s) of experiment(s) {pipelines}")
    print(
        f"records: {report.written} new, {report.present} already present"
        + (f", {report.kept} kept as first imported (changed since)" if report.kept else "")
        + f"; {report.tags} tag record(s) new"
    )
    print(
        f"artifacts: {report.artifacts} hashed"
        + (f"; {report.deleted} deleted run(s) not imported" if report.deleted else "")
    )


@app.command("export")
def export_cmd(
    pipeline: Annotated[
        Optional[str], typer.Option("--pipeline", "-P", help="the pipeline to export (required for cmf-json)")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="output format: cmf-json, openlineage, prov-json or prov-n")
    ] = "cmf-json",
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="write to FILE instead of standard output")
    ] = None,
    url: Annotated[
        Optional[str],
        typer.Option("--url", metavar="URL", help="POST the OpenLineage events to URL (Marquez: http://host:5000)"),
    ] = None,
    namespace: Annotated[
        Optional[str],
        typer.Option("--namespace", metavar="NS", help="OpenLineage job namespace (default: the repository's)"),
    ] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", "-s", help="only this stage (not cmf-json)")] = None,
    where: Annotated[
        Optional[str], typer.Option("--where", "-w", metavar="EXPR", help="only the runs matching EXPR (not cmf-json)")
    ] = None,
    since: Annotated[
        Optional[str], typer.Option("--since", metavar="WHEN", help="only runs started since WHEN (not cmf-json)")
    ] = None,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Export records: a pipeline in the JSON that 'cmf metadata export' writes (cmf-json), or the
    selected executions as OpenLineage RunEvents (JSON lines, or POSTed with --url) or W3C PROV."""
    from cmfgit.repo import open_repo

    if fmt != "cmf-json":
        from cmfgit.exporters.command import export
        from cmfgit.query import scope_of

        summary = export(
            open_repo(),
            fmt,
            scope=scope_of(ref, all_branches, global_, remote),
            pipeline=pipeline,
            stage=stage,
            where=where,
            since=since,
            output=output,
            url=url,
            namespace=namespace,
        )
        if summary.destination:
            what = "event(s)" if fmt == "openlineage" else "PROV record(s)"
            print(
                f"exported {summary.executions} execution(s) as {summary.written} {what} to {summary.destination}",
                file=sys.stderr,
            )
        return
    unused = [
        n
        for n, v in (
            ("--url", url),
            ("--namespace", namespace),
            ("--stage", stage),
            ("--where", where),
            ("--since", since),
            ("--ref", ref),
            ("--remote", remote),
        )
        if v is not None
    ]
    unused += [n for n, v in (("--all-branches", all_branches), ("--global", global_)) if v]
    if unused:
        from cmfgit.errors import UsageError

        raise UsageError(f"{unused[0]} is not available with --format cmf-json")
    if pipeline is None:
        from cmfgit.errors import UsageError

        raise UsageError("--format cmf-json exports one pipeline: give --pipeline NAME")
    from cmfgit import cmf_export

    document = cmf_export.export_cmf(open_repo(), pipeline, fmt)
    if output is None:
        sys.stdout.write(cmf_export.dumps(document) + "\n")
        return
    written = cmf_export.write(document, output)
    executions = sum(len(s["executions"]) for p in document["Pipeline"] for s in p["stages"])
    print(f"exported {executions} execution(s) of {pipeline} to {written}", file=sys.stderr)
