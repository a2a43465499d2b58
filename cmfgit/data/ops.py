"""The data commands as plain functions (the CLI and ``cmfgit push``/``pull`` call these)."""

from __future__ import annotations

from dataclasses import dataclass

from cmfgit.data import place, remote, transfer
from cmfgit.data.cache import Cache
from cmfgit.data.selection import Query, Selected, select
from cmfgit.query import CmfQuery
from cmfgit.repo import Repo


def selected(repo: Repo, query: Query) -> Selected:
    with CmfQuery(repo) as q:
        return select(repo, q, query)


def push(repo: Repo, query: Query, remote_name: str | None, jobs: int) -> transfer.PushResult:
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    try:
        with Cache.of(repo) as cache:
            return transfer.push(repo.root, cache, backend, sel.artifacts, jobs)
    finally:
        backend.close()


def fetch(repo: Repo, query: Query, remote_name: str | None, jobs: int) -> transfer.FetchResult:
    sel = selected(repo, query)
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    try:
        with Cache.of(repo) as cache:
            return transfer.fetch(cache, backend, sel.artifacts, jobs)
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
    latest = list(selected(repo, query).latest_by_path().values())
    backend = remote.open_backend(repo, remote.resolve(repo, remote_name))
    try:
        with Cache.of(repo) as cache:
            fetched = transfer.fetch(cache, backend, latest, jobs)
            return PullResult(fetched, place.place(repo.root, cache, latest, force))
    finally:
        backend.close()


def default_remote(repo: Repo) -> str | None:
    """The default data remote's name, if one is set (``cmfgit push`` then pushes data too)."""
    for spec in remote.remotes(repo):
        if spec.default:
            return spec.name
    return None
