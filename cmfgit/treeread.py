"""Reading records from a git tree-ish, without a checkout.

``git ls-tree`` lists the blobs under ``.cmf/objects`` and one ``git cat-file
--batch`` process streams their contents, so a branch, a tag, the global
metadata branch or a bare repository is read as fast as git can inflate
objects. Loose records are named by their id; packs are split with
``pack.parse``. Only ``gitutil`` runs git.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cmfgit import gitutil, pack
from cmfgit.errors import CmfgitError
from cmfgit.repo import OBJECTS_DIR

PACK_PREFIX = "pack/"
_LOOSE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{62})\.yaml$")


@dataclass(frozen=True)
class TreeFile:
    """A file of the object store in some tree: path relative to ``.cmf/objects``."""

    path: str
    blob: str

    @property
    def loose_id(self) -> str | None:
        """The record id a loose file's name gives, or None for a pack."""
        m = _LOOSE.match(self.path)
        return m.group(1) + m.group(2) if m else None

    @property
    def is_pack(self) -> bool:
        return self.path.startswith(PACK_PREFIX) and self.path.endswith(".yaml")


def classify(path: str) -> str | None:
    """'loose', 'pack' or None (not a record file) for a path under ``.cmf/objects``."""
    name = path.rsplit("/", 1)[-1]
    if name.startswith("."):
        return None
    if _LOOSE.match(path):
        return "loose"
    if path.startswith(PACK_PREFIX) and path.endswith(".yaml"):
        return "pack"
    return None


def objects_tree(root: Path | str, rev: str) -> str | None:
    """The tree id of ``.cmf/objects`` at ``rev``; None if ``rev`` has no records.

    Raises CmfgitError if ``rev`` itself does not exist.
    """
    if gitutil.rev_parse(root, f"{rev}^{{tree}}") is None:
        raise CmfgitError(f"unknown revision '{rev}'")
    return gitutil.rev_parse(root, f"{rev}^{{tree}}:{OBJECTS_DIR}")


def list_files(root: Path | str, tree: str) -> list[TreeFile]:
    """Record files (loose and packs) in ``tree``, a tree id of ``.cmf/objects``."""
    return [TreeFile(p, b) for p, b in gitutil.ls_tree_blobs(root, tree) if classify(p)]


def read_files(
    root: Path | str, files: Iterable[TreeFile], verify: bool = False
) -> Iterator[tuple[TreeFile, dict[str, bytes]]]:
    """Each file with its records (id -> canonical bytes), in the order given."""
    files = list(files)
    by_blob: dict[str, list[TreeFile]] = {}
    for f in files:
        by_blob.setdefault(f.blob, []).append(f)
    blobs = list(by_blob)
    for blob, data in gitutil.cat_blobs(root, blobs):
        for f in by_blob[blob]:
            rid = f.loose_id
            if rid is not None:
                yield f, {rid: data}
            else:
                yield f, pack.parse(data, f"{OBJECTS_DIR}/{f.path}@{blob[:12]}", verify=verify)


def iter_records(root: Path | str, rev: str, verify: bool = False) -> Iterator[tuple[str, bytes]]:
    """(id, canonical bytes) of every record at ``rev``, each id once."""
    tree = objects_tree(root, rev)
    if tree is None:
        return
    seen: set[str] = set()
    for _f, records in read_files(root, list_files(root, tree), verify=verify):
        for rid, data in records.items():
            if rid not in seen:
                seen.add(rid)
                yield rid, data
