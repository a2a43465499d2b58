"""The directory remote's batch upload: every object whole under its name, no temps
left, and a failed object reported without losing the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

from cmfgit.data import local
from cmfgit.data.local import LocalBackend
from cmfgit.data.remote import object_key


def _objects(tmp: Path, n: int) -> list[tuple[str, str]]:
    items = []
    for i in range(n):
        data = f"object {i}\n".encode() * (i + 1)
        path = tmp / f"src-{i}"
        path.write_bytes(data)
        items.append((str(path), object_key(blake3(data).hexdigest())))
    return items


@pytest.mark.parametrize("count", [3, local.LIST_ABOVE + 50])  # fsynced one by one; a syncfs batch, listed
def test_a_batch_lands_whole_with_one_failure_reported(tmp_path: Path, count: int) -> None:
    store = tmp_path / "store"
    store.mkdir()
    backend = LocalBackend("store", str(store), store)
    items = _objects(tmp_path, count)
    items.insert(1, (str(tmp_path / "gone"), object_key("ab" * 32)))  # its source vanished
    sizes: list[int] = []
    errors = backend.upload_many(items, 4, sizes.append)
    assert [type(e) for e in errors] == [FileNotFoundError]
    assert sorted(sizes) == sorted(Path(src).stat().st_size for src, _ in items if Path(src).exists())
    for src, key in items:
        target = store / key
        if Path(src).exists():
            assert target.read_bytes() == Path(src).read_bytes()
            assert target.stat().st_mode & 0o777 == 0o444
        else:
            assert not target.exists()
    assert [p for p in store.rglob(".tmp-*")] == []
    assert backend.missing([key for _, key in items]) == {object_key("ab" * 32)}


def test_a_single_upload_raises_its_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    backend = LocalBackend("store", str(store), store)
    with pytest.raises(FileNotFoundError):
        backend.upload(str(tmp_path / "gone"), object_key("cd" * 32))
    assert not (store / object_key("cd" * 32)).exists()
