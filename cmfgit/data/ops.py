"""The data commands as plain functions (the CLI and ``cmfgit push``/``pull`` call these)."""

from __future__ import annotations

from dataclasses import dataclass

from cmfgit.data import dvclayout, place, remote, transfer
from cmfgit.data.cache import Cache
from cmfgit.data.selection import Artifact, Query, Selected, select
from cmfgit.query import CmfQuery
from cmfgit.repo import Repo

TYPE_CHECKING = False  # push imports this module: placing is only imported to pull
if TYPE_CHECKING:
    from cmfgit.data import place


def selected(repo: Repo, query: Query) -> Selected:
    with CmfQuery(repo) as q:
        return select(repo, q, query)


def push(repo: Repo, query: Query, remote_name: str | None, jobs: int) -> transfer.PushResult:
    """Push the selected artifacts: blake3 objects, and DVC's md5 copies to a remote
    with ``dvc_copies`` (counted in the same result)."""
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    if backend.layout == "dvc":
        from cmfgit.errors import RemoteError

        raise RemoteError(
            backend.name,
            "a DVC-layout remote is read-only for cmfgit (md5 artifacts are read from it); to write DVC's "
            "layout, push to a cmfgit remote added with --dvc-copies",
        )
    try:
        with Cache.of(repo) as cache:
            result = transfer.push(repo.root, cache, backend, sel.artifacts, jobs)
            if backend.dvc_copies:
                pushed, sent, already = dvclayout.push_copies(cache, backend, sel.artifacts, jobs)
                result.pushed += pushed
                result.bytes += sent
                result.already += already
        backend.clean_temps()  # killed pushes' temp files in the directories this one wrote
        return result
    finally:
        backend.close()


def clean_remote_temps(repo: Repo, remote_name: str | None, older_than: float) -> tuple[str, int]:
    """Remove every temp file of a killed upload on a data remote: (remote, how many)."""
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    try:
        return backend.name, backend.clean_temps(older_than, everywhere=True)
    finally:
        backend.close()


def _fetch(
    repo: Repo,
    cache: Cache,
    backend: remote.Backend,
    blake3: list[Artifact],
    md5: list[Artifact],
    jobs: int,
    keep: dict[str, bytes] | None = None,
) -> transfer.FetchResult:
    """Fetch blake3 artifacts (from a blake3 remote) and md5-only ones (from a remote with DVC's
    layout, which also serves blake3 artifacts that have an md5 alias)."""
    md5s = [a.md5hex or "" for a in md5]
    if backend.layout == "dvc":
        result = dvclayout.fetch(cache, backend, md5s, jobs)
        more = dvclayout.fetch_aliased(repo, cache, backend, blake3, jobs)
        result.fetched += more.fetched
        result.bytes += more.bytes
        return result
    result = transfer.fetch(cache, backend, blake3, jobs, keep)
    if md5:  # (says which remote to add when this one has no DVC layout)
        more = dvclayout.fetch(cache, backend, md5s, jobs)
        result.fetched += more.fetched
        result.bytes += more.bytes
        result.cached += more.cached
    return result


def fetch(repo: Repo, query: Query, remote_name: str | None, jobs: int) -> transfer.FetchResult:
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    md5 = list({a.md5hex: a for a in sel.skipped if a.md5hex}.values())
    try:
        with Cache.of(repo) as cache:
            return _fetch(repo, cache, backend, sel.artifacts, md5, jobs)
    finally:
        backend.close()


@dataclass
class PullResult:
    fetched: transfer.FetchResult
    placed: place.PlaceResult

    def as_json(self) -> dict[str, object]:
        return {**self.fetched.as_json(), **self.placed.as_json()}


def pull(repo: Repo, query: Query, remote_name: str | None, jobs: int, force: bool) -> PullResult:
    """Fetch the latest selected version of each path, then place them all (or nothing)."""
    from cmfgit.data import place

    blake3, md5 = selected(repo, query).latest_with_md5()
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    try:
        with Cache.of(repo) as cache:
            ready: dict[str, bytes] = {}  # small objects' verified bytes: placed from memory
            fetched = _fetch(repo, cache, backend, blake3, md5, jobs, ready)
            if backend.layout == "dvc":  # blake3 artifacts without an md5 alias are not there: placed if cached
                blake3 = [a for a in blake3 if cache.has(a.hex)]
            placing = blake3 + [dvclayout.as_blake3(cache, a) for a in md5]
            return PullResult(fetched, place.place(repo.root, cache, placing, force, ready, jobs))
    finally:
        backend.close()


def default_remote(repo: Repo, for_push: bool = False) -> str | None:
    """The default data remote's name, if one is set (``cmfgit push`` then pushes data too,
    unless it is a DVC-layout remote, read-only for cmfgit: ``for_push``)."""
    for spec in remote.effective(repo):
        if spec.default:
            return None if for_push and spec.layout == "dvc" else spec.name
    return None


def get(repo: Repo, target: str, remote_name: str | None, dest: str, force: bool, jobs: int) -> Artifact:
    """Put one artifact (``HASH``, ``PATH`` or ``PATH@RUN``) at ``dest``: from the cache, else
    fetched as ``artifact pull`` fetches it (an md5 artifact, or a blake3 one by its md5 alias,
    from a DVC-layout remote). Returns the artifact placed."""
    from cmfgit.data import place
    from cmfgit.errors import CmfgitError, MissingObjectError

    path, _, run = target.rpartition("@") if "@" in target else (target, "", "")
    sel = selected(repo, Query(runs=(run,)) if run else Query(artifacts=(path,)))
    candidates = sorted(sel.artifacts + [a for a in sel.skipped if a.md5hex], key=lambda a: a.started_at)
    found = [a for a in candidates if not run or a.path == path]
    if not found:
        raise CmfgitError(f"{target}: no recorded artifact with bytes matches")
    art = found[-1]
    with Cache.of(repo) as cache:
        if art.md5hex:
            have = dvclayout.cached(cache, art.md5hex) is not None
        else:
            have = cache.has_tree(art.hex) if art.kind == "dir" else cache.has(art.hex)
        if not have:
            backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
            try:
                if art.md5hex:
                    _fetch(repo, cache, backend, [], [art], jobs)
                else:
                    _fetch(repo, cache, backend, [art], [], jobs)
                    if not cache.has(art.hex):  # a DVC-layout remote, and no md5 alias to read it by
                        raise MissingObjectError(art.hash, f"data remote '{backend.name}'", art.path)
            finally:
                backend.close()
        placing = dvclayout.as_blake3(cache, art) if art.md5hex else art
        place.get(cache, placing.hex, placing.kind, dest, force)
    return art
