"""Commands of the data area: remote, artifact add/push/fetch/pull/gc, checkout, get, status.

The bodies are in ``cmfgit/data/``; these parse options, call the core with
plain arguments and print what it returns. Every selecting command takes
the selection of ``cmfgit pull`` (``cmfgit/data/selection.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.render import print_json
from cmfgit.fastdata import print_fetch, print_pull, print_push, split_targets
from cmfgit.fastdata import size_text as _size

TargetsArg = Annotated[
    Optional[list[str]],
    typer.Argument(metavar="[RUN|PATH]...", help="run ids (prefixes) and recorded paths (default: everything)"),
]
PipelineOpt = Annotated[
    Optional[list[str]], typer.Option("--pipeline", "-P", help="artifacts of this pipeline's runs (repeatable)")
]
StageOpt = Annotated[
    Optional[list[str]], typer.Option("--stage", "-s", help="artifacts of this stage's runs (repeatable)")
]
ArtifactOpt = Annotated[
    Optional[list[str]], typer.Option("--artifact", "-a", help="this artifact: a path or a hash (prefix) (repeatable)")
]
TagOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--tag",
        "-t",
        metavar="KEY=VALUE",
        help="artifacts of runs tagged so, and artifact versions tagged so (repeated: all of them, AND)",
    ),
]
SinceOpt = Annotated[
    Optional[str], typer.Option("--since", help="runs started at or after DATE (2026-01-31, ...T12:00Z, 7d, 12h)")
]
LineageOpt = Annotated[
    bool, typer.Option("--with-lineage", help="also the artifacts of every run upstream of the selected runs")
]
DataRemoteOpt = Annotated[
    Optional[str], typer.Option("--remote", "-r", help="data remote (default: the configured default)")
]
JobsOpt = Annotated[
    Optional[int], typer.Option("--jobs", "-j", help="parallel transfers (default: 4 per core, at most 32)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="overwrite modified files (their bytes are lost)")]


def _query(
    targets: list[str] | None,
    pipeline: list[str] | None,
    stage: list[str] | None,
    artifact: list[str] | None,
    since: str | None,
    with_lineage: bool,
    tag: list[str] | None = None,
) -> Any:
    from cmfgit.data.selection import Query
    from cmfgit.localview import parse_tags

    runs, paths = split_targets(targets or [])
    return Query(
        runs=tuple(runs),
        pipelines=tuple(pipeline or ()),
        stages=tuple(stage or ()),
        since=since,
        artifacts=tuple(artifact or ()),
        paths=tuple(paths),
        with_lineage=with_lineage,
        tags=parse_tags(tag or ()),
    )


def _selected(repo: Any, query: Any) -> Any:
    from cmfgit.data.selection import select
    from cmfgit.query import CmfQuery

    with CmfQuery(repo) as q:
        return select(repo, q, query)


def _jobs(jobs: int | None) -> int:
    from cmfgit.data.transfer import DEFAULT_JOBS
    from cmfgit.errors import UsageError

    if jobs is not None and jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return jobs or DEFAULT_JOBS


def _backend(repo: Any, name: str | None) -> Any:
    from cmfgit.data import remote

    return remote.open_backend(repo, remote.resolve(repo, name))


# -- cmfgit remote -------------------------------------------------------------------------

remote_app = typer.Typer(
    name="remote",
    help="Data remotes: where artifact bytes are kept (named in .cmf/config.yaml; never credentials).",
    no_args_is_help=True,
)
app.add_typer(remote_app, name="remote")


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="a name for the remote")],
    url: Annotated[str, typer.Argument(help="a directory (local or mounted), file://, s3://, ssh://, https://, ...")],
    default: Annotated[bool, typer.Option("--default", "-d", help="make it the default data remote")] = False,
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", help="the S3 endpoint URL, for MinIO or Ceph")
    ] = None,
    layout: Annotated[
        Optional[str],
        typer.Option(
            "--layout", help="blake3 (cmfgit's, the default) or dvc: a DVC/CMF remote, read for md5 artifacts"
        ),
    ] = None,
    dvc_copies: Annotated[
        bool,
        typer.Option(
            "--dvc-copies",
            help="also write DVC's layout (files/md5/..., .dir listings) on push, for dvc pull and cmf artifact pull",
        ),
    ] = False,
) -> None:
    """Add a data remote. Credentials never go in the URL: they come from the environment,
    ~/.aws, the ssh agent or ~/.ssh/config, or this clone's git config cmfgit.remote.NAME.OPTION."""
    from cmfgit.data import remote
    from cmfgit.repo import open_repo

    options = {
        k: v for k, v in (("endpoint", endpoint), ("layout", layout), ("dvc_copies", dvc_copies and "true")) if v
    }
    spec = remote.add(open_repo(), name, url, default, options or None)
    print(f"added data remote '{spec.name}' -> {spec.url}{' (default)' if spec.default else ''}")
    print("next: commit .cmf/config.yaml so that every clone knows it")


@remote_app.command("list")
def remote_list(as_json: JsonOpt = False) -> None:
    """List the data remotes (the default is marked with *)."""
    from cmfgit.data import remote
    from cmfgit.repo import open_repo

    specs = remote.effective(open_repo())  # the default branch's, with a note, if this branch names none
    if as_json:
        print_json([{"name": s.name, "url": s.url, "default": s.default, **s.options} for s in specs])
        return
    for s in specs:
        extra = "".join(f"  {k}={v}" for k, v in sorted(s.options.items()))
        print(f"{'*' if s.default else ' '} {s.name:<12} {s.url}{extra}")


@remote_app.command("remove")
def remote_remove(name: Annotated[str, typer.Argument(help="the remote to remove")]) -> None:
    """Remove a data remote from the config (its data is left where it is)."""
    from cmfgit.data import remote
    from cmfgit.repo import open_repo

    spec = remote.remove(open_repo(), name)
    print(f"removed data remote '{spec.name}' ({spec.url})")


# -- cmfgit artifact -----------------------------------------------------------------------

artifact_app = typer.Typer(
    name="artifact",
    help="Artifact bytes: the cache of this clone, and data remotes (push, fetch, pull).",
    no_args_is_help=True,
)
app.add_typer(artifact_app, name="artifact")


@artifact_app.command("add")
def artifact_add(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="files or directories to put in the cache")],
    as_json: JsonOpt = False,
) -> None:
    """Put files or directories into this clone's cache (hashed; a reflink where the filesystem has one)."""
    from cmfgit.data.cache import Cache
    from cmfgit.repo import open_repo

    repo = open_repo()
    rows: list[dict[str, Any]] = []
    with Cache.of(repo) as cache:
        for path in paths:
            added = cache.add_path(path, path)
            rows.append({"path": path, "hash": added.digest.hash, "objects": added.objects, "bytes": added.bytes})
    if as_json:
        print_json(rows)
        return
    for r in rows:
        print(f"{r['hash'][:19]}  {r['path']}  ({r['objects']} new object(s), {_size(r['bytes'])})")


@artifact_app.command("push")
def artifact_push(
    targets: TargetsArg = None,
    pipeline: PipelineOpt = None,
    stage: StageOpt = None,
    artifact: ArtifactOpt = None,
    tag: TagOpt = None,
    since: SinceOpt = None,
    with_lineage: LineageOpt = False,
    remote: DataRemoteOpt = None,
    jobs: JobsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload the selected artifacts' bytes that the data remote lacks.

    Bytes come from the cache, or from the recorded path while it still holds
    the recorded bytes (they enter the cache then).
    """
    from cmfgit.data import ops
    from cmfgit.repo import open_repo

    query = _query(targets, pipeline, stage, artifact, since, with_lineage, tag)
    result = ops.push(open_repo(), query, remote, _jobs(jobs))
    if as_json:
        print_json(result.as_json())
        return
    print_push(result)


@artifact_app.command("fetch")
def artifact_fetch(
    targets: TargetsArg = None,
    pipeline: PipelineOpt = None,
    stage: StageOpt = None,
    artifact: ArtifactOpt = None,
    tag: TagOpt = None,
    since: SinceOpt = None,
    with_lineage: LineageOpt = False,
    remote: DataRemoteOpt = None,
    jobs: JobsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the selected artifacts into the cache (verified), placing nothing."""
    from cmfgit.data import ops
    from cmfgit.repo import open_repo

    query = _query(targets, pipeline, stage, artifact, since, with_lineage, tag)
    result = ops.fetch(open_repo(), query, remote, _jobs(jobs))
    if as_json:
        print_json(result.as_json())
        return
    print_fetch(result)


@artifact_app.command("pull")
def artifact_pull(
    targets: TargetsArg = None,
    pipeline: PipelineOpt = None,
    stage: StageOpt = None,
    artifact: ArtifactOpt = None,
    tag: TagOpt = None,
    since: SinceOpt = None,
    with_lineage: LineageOpt = False,
    remote: DataRemoteOpt = None,
    jobs: JobsOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the selected artifacts, then place each at its recorded path (the latest selected version per path).

    Nothing is placed unless every object arrived intact; modified files are
    not overwritten without --force.
    """
    from cmfgit.data import ops
    from cmfgit.repo import open_repo

    query = _query(targets, pipeline, stage, artifact, since, with_lineage, tag)
    result = ops.pull(open_repo(), query, remote, _jobs(jobs), force)
    if as_json:
        print_json(result.as_json())
        return
    print_pull(result)


@artifact_app.command("gc")
def artifact_gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="only say what would be dropped")] = False,
    remote_temps: Annotated[
        bool,
        typer.Option("--remote", help="also remove the temp files killed uploads left on the data remote"),
    ] = False,
    remote_name: Annotated[
        Optional[str], typer.Option("-r", metavar="REMOTE", help="the data remote of --remote (default: the default)")
    ] = None,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            metavar="SECONDS",
            help="--remote: only temp files not written for this long (0: all; only when no push is running)",
        ),
    ] = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Drop cache objects that no record of the checkout or of any local branch refers to.

    With --remote, also remove from the data remote the temp files of uploads that were
    killed (not written for --older-than seconds); its objects are left alone.
    """
    from cmfgit.data import cachegc
    from cmfgit.data.cache import Cache
    from cmfgit.data.selection import Query, select
    from cmfgit.query import CmfQuery
    from cmfgit.repo import open_repo

    repo = open_repo()
    artifacts = []
    for scope in (None, "all-branches"):
        with CmfQuery(repo, scope=scope) as q:
            artifacts += select(repo, q, Query()).artifacts
    with Cache.of(repo) as cache:
        result = cachegc.gc(cache, artifacts, dry_run)
    cleaned: tuple[str, int] | None = None
    if (remote_temps or remote_name) and not dry_run:
        from cmfgit.data import ops

        cleaned = ops.clean_remote_temps(repo, remote_name, max(0.0, older_than))
    if as_json:
        extra = {"remote": cleaned[0], "remote_temps_removed": cleaned[1]} if cleaned else {}
        print_json({**result.as_json(), **extra})
        return
    verb = "would drop" if dry_run else "dropped"
    print(f"gc: {verb} {result.dropped:,} object(s), {_size(result.bytes)}; kept {result.kept:,}")
    if cleaned:
        print(f"gc: removed {cleaned[1]:,} temp file(s) of killed uploads from data remote '{cleaned[0]}'")


# -- checkout, get, status ------------------------------------------------------------------


@app.command()
def checkout(
    run: Annotated[str, typer.Argument(metavar="RUN", help="an execution id (prefix)")],
    inputs: Annotated[bool, typer.Option("--inputs", help="only what the run read")] = False,
    outputs: Annotated[bool, typer.Option("--outputs", help="only what the run wrote")] = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Put the exact bytes a run read (or wrote) at their recorded paths, from the cache.

    Refuses to overwrite a file whose bytes are not in the cache unless
    --force is given. Fetch missing objects first with 'cmfgit artifact fetch RUN'.
    """
    from cmfgit.data import place
    from cmfgit.data.cache import Cache
    from cmfgit.data.dvclayout import as_blake3
    from cmfgit.data.selection import Query, check_direction
    from cmfgit.repo import open_repo

    repo = open_repo()
    sel = _selected(repo, Query(runs=(run,), direction=check_direction(inputs, outputs)))
    blake3, md5 = sel.latest_with_md5()
    with Cache.of(repo) as cache:
        # md5-only (CMF) artifacts: as the objects they were fetched as from a DVC remote
        result = place.place(repo.root, cache, blake3 + [as_blake3(cache, a) for a in md5], force)
    if as_json:
        print_json(result.as_json())
        return
    for path in result.placed:
        print(f"placed     {path}")
    for path in result.unchanged:
        print(f"unchanged  {path}")
    for art in sel.skipped:
        if not art.md5hex:
            print(f"skipped    {art.path}: no bytes to place ({art.kind}, {art.hash})")


@app.command()
def get(
    target: Annotated[
        str, typer.Argument(metavar="HASH|PATH[@RUN]", help="an artifact hash (prefix), or a recorded path (at a run)")
    ],
    output: Annotated[str, typer.Option("--output", "-o", metavar="DEST", help="where to put it")],
    remote: DataRemoteOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="replace DEST if it exists")] = False,
) -> None:
    """Put one artifact at any path: from the cache, else fetched from the data remote
    (an md5 artifact, or one with an md5 alias, from a DVC-layout remote, as pull does)."""
    from cmfgit.data import ops
    from cmfgit.repo import open_repo

    art = ops.get(open_repo(), target, remote, output, force, _jobs(None))
    print(f"{art.hash[:19]}  {art.path} -> {output}")


@app.command()
def status(
    paths: Annotated[Optional[list[str]], typer.Argument(metavar="[PATH]...", help="only these paths")] = None,
    remote_check: Annotated[bool, typer.Option("--remote", help="also say which are on the data remote")] = False,
    remote_name: Annotated[
        Optional[str], typer.Option("-r", metavar="REMOTE", help="the data remote of --remote (default: the default)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Each recorded artifact path: unchanged, modified or missing against its latest recorded version;
    and whether that version's bytes are in the cache (and on the data remote, with --remote).

    Also "never recorded": files new in a recorded directory, and entries beside recorded
    paths (in their parent directory, not the repository's top; not dot files, not files
    git tracks) that no record has."""
    from cmfgit.data import status as data_status
    from cmfgit.data.cache import Cache
    from cmfgit.data.selection import Query, select
    from cmfgit.query import CmfQuery
    from cmfgit.repo import open_repo

    repo = open_repo()
    with CmfQuery(repo) as q:
        found = select(repo, q, Query(paths=tuple(paths or ())), unknown_ok=True)
    latest = {a.path: a for a in sorted(found.artifacts + found.skipped, key=lambda a: a.started_at)}
    backend = _backend(repo, remote_name) if remote_check or remote_name else None
    aliases = None
    if backend is not None and backend.layout == "dvc":  # blake3 artifacts are read there by their md5 alias
        from cmfgit.data.dvclayout import md5_aliases

        aliases = md5_aliases(repo, (a.hash for a in latest.values() if a.storable))
    with Cache.of(repo) as cache:
        rows = data_status.status(repo.root, cache, list(latest.values()), found.unknown, backend, aliases)
        named = [repo.relpath(p).rstrip("/") for p in paths or ()]
        rows += [
            data_status.PathStatus(p, data_status.NEVER, None, None, None)
            for p in data_status.never_recorded(repo.root, cache, rows, list(latest.values()))
            if not named or any(p == n or p.startswith(n + "/") for n in named)
        ]
    if as_json:
        print_json([r.as_json() for r in rows])
        return
    for r in rows:
        cached = {True: "cached", False: "-", None: ""}[r.cached]
        on_remote = {True: "  remote", False: "  -", None: ""}[r.remote] if backend is not None else ""
        print(f"{r.state:<15} {cached:<7}{on_remote:<9} {r.path}")
