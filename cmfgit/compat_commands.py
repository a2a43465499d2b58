"""cmflib's module-level commands (``cmflib.cmf.cmf_init``, ``metadata_push``, ...) with cmfgit meanings.

Each takes cmflib's arguments and returns a message string, as cmflib's do,
and runs the cmfgit command that does the same job (docs/coming-from-cmf.md,
"Commands"). The repository is the one holding ``file_name``/``filepath``
(cmflib's MLMD file): its directory, as ``Cmf`` reads it. They are re-exported
by :mod:`cmfgit.compat`, so ``from cmfgit.compat import metadata_push`` works.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cmfgit.errors import UsageError
from cmfgit.repo import Repo, open_repo

__all__ = ["cmf_init", "metadata_push", "metadata_pull", "metadata_export", "artifact_push", "artifact_pull"]

# cmf init's storage kinds -> how the URL of the cmfgit data remote is made
_STORAGE = ("local", "minios3", "amazons3", "sshremote", "osdfremote")


def _repo(file_name: str) -> Repo:
    return open_repo(os.path.dirname(os.path.abspath(file_name)))


def _note(message: str) -> None:
    print(f"cmfgit: {message}", file=sys.stderr)


def cmf_init(
    type: str = "",
    path: str = "",
    git_remote_url: str = "",
    cmf_server_url: str = "",
    url: str = "",
    endpoint_url: str = "",
    access_key_id: str = "",
    secret_key: str = "",
    session_token: str = "",
    user: str = "",
    password: str = "",
    port: int = 0,
    osdf_path: str = "",
    osdf_cache: str = "",
    key_id: str = "",
    key_path: str = "",
    key_issuer: str = "",
    neo4j_user: str | None = None,
    neo4j_password: str | None = None,
    neo4j_uri: str | None = None,
) -> str:
    """``cmfgit init`` here, and the artifact storage as the default data remote ``cmf``.

    ``local`` (``path``, a directory), ``minios3``/``amazonS3`` (``url``,
    ``s3://bucket/prefix``; credentials come from the environment, as boto
    reads them, and are never written to the repository) and ``sshremote``
    (``path``, an ``ssh://`` URL) become a cmfgit data remote; ``git_remote_url``
    becomes the git remote ``origin`` when there is none. There is no server to
    name: ``cmf_server_url`` and the neo4j settings are not needed."""
    from cmfgit import gitutil
    from cmfgit.data import remote
    from cmfgit.init import init

    kind = type.lower()
    if kind and kind not in _STORAGE:
        raise UsageError(f"cmf_init: unknown type '{type}' (known: local, minioS3, amazonS3, sshremote, osdfremote)")
    if kind == "osdfremote":
        raise UsageError("cmf_init: an OSDF remote is not a cmfgit data remote; use a directory, S3 or SSH remote")
    result = init(os.getcwd())
    repo = open_repo(result.repo.root)
    said = [f"cmfgit initialised in {repo.root}"]
    target = {"local": path, "minios3": url, "amazons3": url, "sshremote": path}.get(kind, "")
    if target:
        if kind == "local":
            target = os.path.abspath(target)
            os.makedirs(target, exist_ok=True)  # as DVC's push would create it
        options = {"endpoint": endpoint_url} if endpoint_url and kind in ("minios3", "amazons3") else {}
        known = {spec.name: spec for spec in remote.remotes(repo)}
        if "cmf" in known:
            said.append(f"data remote 'cmf' already set ({known['cmf'].url})")
        else:
            remote.add(repo, "cmf", target, default=True, options=options)
            said.append(f"data remote 'cmf' = {target} (default)")
    if git_remote_url:
        remotes = gitutil.git_text(["remote"], repo.root).split()
        if "origin" in remotes:
            said.append("git remote 'origin' kept")
        else:
            gitutil.git(["remote", "add", "origin", git_remote_url], repo.root)
            said.append(f"git remote 'origin' = {git_remote_url}")
    if access_key_id or secret_key or session_token or password or key_id or key_path:
        said.append("credentials were not stored: give them to S3/SSH as you do to their own tools (environment)")
    return "; ".join(said)


def metadata_push(
    pipeline_name: str,
    file_name: str = "./mlmd",
    tensorboard_path: str | None = None,
    execution_uuid: str | None = None,
) -> str:
    """``cmfgit push``: commits pending records, pushes the branch and publishes this site's
    metadata. git pushes the whole branch, so every pipeline's records go, not one pipeline's."""
    from cmfgit import sync

    if tensorboard_path:
        raise UsageError("metadata_push: tensorboard logs are artifacts in cmfgit; log them (log_dataset) and push")
    if execution_uuid:
        _note("metadata_push: git pushes every record of the branch, not one execution")
    result = sync.push(_repo(file_name))
    where = result.destination or result.branch or "the global view"
    state = "pushed" if result.pushed else (result.branch_error or "published")
    return f"metadata of '{pipeline_name}' {state} to {result.remote} ({where}); {result.committed} record(s) committed"


def metadata_pull(pipeline_name: str, file_name: str = "./mlmd", execution_uuid: str | None = None) -> str:
    """``cmfgit pull --pipeline P``: the branch, then the pipeline's records of the global view."""
    from cmfgit import sync
    from cmfgit.localview import Selection

    if execution_uuid:
        _note("metadata_pull: pulls the pipeline's records, not one execution's")
    result = sync.pull(_repo(file_name), Selection(pipelines=(pipeline_name,)))
    return f"metadata of '{pipeline_name}' pulled from {result.remote}: {result.written} new record(s)"


def metadata_export(pipeline_name: str, json_file_name: str | None = None, file_name: str = "./mlmd") -> str:
    """``cmfgit export --format cmf-json -P P -o FILE`` (FILE: ``<pipeline>.json`` if not given)."""
    from cmfgit import cmf_export

    out = Path(json_file_name or f"{pipeline_name}.json")
    cmf_export.write(cmf_export.export_cmf(_repo(file_name), pipeline_name), out)
    return f"metadata of '{pipeline_name}' exported to {out}"


def artifact_push(pipeline_name: str, filepath: str = "./mlmd", jobs: int = 32) -> str:
    """``cmfgit artifact push --pipeline P`` to the default data remote."""
    from cmfgit.data import ops
    from cmfgit.data.selection import Query

    result = ops.push(_repo(filepath), Query(pipelines=(pipeline_name,)), None, int(jobs))
    missing = f", {len(result.unavailable)} not here" if result.unavailable else ""
    counts = f"{result.pushed} new, {result.already} there{missing}"
    return f"artifacts of '{pipeline_name}' pushed to {result.remote}: {counts}"


def artifact_pull(pipeline_name: str, file_name: str = "./mlmd", artifact_name: str | None = None) -> str:
    """``cmfgit artifact pull --pipeline P [PATH]`` from the default data remote: the latest
    version of each path (or of ``artifact_name``, a path or CMF's ``path:md5`` name)."""
    from cmfgit.data import ops
    from cmfgit.data.selection import Query

    paths = (artifact_name.split(":", 1)[0],) if artifact_name else ()
    result = ops.pull(_repo(file_name), Query(pipelines=(pipeline_name,), paths=paths), None, 8, False)
    return (
        f"artifacts of '{pipeline_name}' pulled from {result.fetched.remote}: {result.fetched.fetched} fetched,"
        f" {len(result.placed.placed)} placed"
    )
