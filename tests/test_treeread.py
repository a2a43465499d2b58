"""Reading records from a git tree without a checkout (cmfgit.treeread)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cmfgit, git

from cmfgit import canonical, pack, treeread
from cmfgit.errors import CmfgitError
from cmfgit.repo import open_repo
from cmfgit.store import Store


def test_reads_loose_and_packed_records_of_another_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "side")
    for i in range(3):
        cmfgit(repo, "log-run", "-P", "p", "-s", f"s{i}", "--", "true")
    store = Store(open_repo(repo).objects_dir)
    loose = {r.id: r.data for r in store.iter_records()}
    extra = {}
    for i in range(4):
        data, rid = canonical.encode(
            {
                "schema": "cmfgit/annotation/1",
                "target": "x",
                "kind": "note",
                "at": "2026-01-01T00:00:00.000000Z",
                "body": {"i": i},
            }
        )
        extra[rid] = data
    extra[next(iter(loose))] = loose[next(iter(loose))]  # a record both loose and packed
    (repo / ".cmf/objects/pack/site").mkdir(parents=True)
    (repo / ".cmf/objects/pack/site/2026-01.yaml").write_bytes(pack.serialize(extra))
    git(repo, "add", ".cmf")
    git(repo, "commit", "-q", "-m", "records")
    git(repo, "checkout", "-q", "main")
    assert not (repo / ".cmf/objects/pack").exists()

    got = list(treeread.iter_records(repo, "side", verify=True))
    assert len(got) == len({r for r, _ in got}) == 7
    assert dict(got) == {**loose, **extra}
    tree = treeread.objects_tree(repo, "side")
    files = treeread.list_files(repo, tree or "")
    assert sum(f.is_pack for f in files) == 1 and sum(f.loose_id is not None for f in files) == 3
    assert treeread.objects_tree(repo, "main") is None or list(treeread.iter_records(repo, "main")) == []
    with pytest.raises(CmfgitError, match="unknown revision"):
        treeread.objects_tree(repo, "no-such-branch")
