"""The data commands as plain functions (the CLI and ``cmfgit push``/``pull`` call these)."""

from __future__ import annotations

from dataclasses import dataclass

from cmfgit.data import remote, transfer
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
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    if backend.layout == "dvc":
        from cmfgit.errors import RemoteError

        raise RemoteError(backend.name, "a DVC-layout remote is read-only for cmfgit (md5 artifacts are read from it)")
    try:
        with Cache.of(repo) as cache:
            return transfer.push(repo.root, cache, backend, sel.artifacts, jobs)
    finally:
        backend.close()


def _fetch(
    cache: Cache, backend: remote.Backend, blake3: list[Artifact], md5: list[Artifact], jobs: int
) -> transfer.FetchResult:
    """Fetch blake3 artifacts (from a blake3 remote) and md5-only ones (from a DVC-layout remote)."""
    if backend.layout == "dvc":
        return transfer.fetch_md5(cache, backend, [a.md5hex or "" for a in md5], jobs)
    result = transfer.fetch(cache, backend, blake3, jobs)
    if md5:
        transfer.fetch_md5(cache, backend, [a.md5hex or "" for a in md5], jobs)  # says which remote to add
    return result


def fetch(repo: Repo, query: Query, remote_name: str | None, jobs: int) -> transfer.FetchResult:
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    md5 = list({a.md5hex: a for a in sel.skipped if a.md5hex}.values())
    try:
        with Cache.of(repo) as cache:
            return _fetch(cache, backend, sel.artifacts, md5, jobs)
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
            fetched = _fetch(cache, backend, blake3, md5, jobs)
            if backend.layout == "dvc":  # blake3 artifacts are not on a DVC remote: placed if cached
                blake3 = [a for a in blake3 if cache.has(a.hex)]
            placing = blake3 + [transfer.as_blake3(cache, a) for a in md5]
            return PullResult(fetched, place.place(repo.root, cache, placing, force))
    finally:
        backend.close()


def default_remote(repo: Repo) -> str | None:
    """The default data remote's name, if one is set (``cmfgit push`` then pushes data too)."""
    for spec in remote.remotes(repo):
        if spec.default:
            return spec.name
    return None
