"""``cmfgit fsck`` finds every kind of damage, names the file and exits 1."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from blake3 import blake3
from conftest import cmfgit, make_repo

import cmfgit as api
from cmfgit import canonical, pack

Damage = Callable[[Path, Path], Path]  # (objects dir, a loose record) -> the file to be named


def _rehome(objects: Path, data: bytes) -> Path:
    """Store ``data`` under the name its bytes hash to, as a tamperer with the tools would."""
    rid = blake3(data).hexdigest()
    path = objects / rid[:2] / f"{rid[2:]}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def one_byte_edit(objects: Path, victim: Path) -> Path:
    data = bytearray(victim.read_bytes())
    at = data.index(b"stage: ") + len("stage: ")
    data[at] = ord("X") if data[at] != ord("X") else ord("Y")
    victim.write_bytes(bytes(data))
    return victim


def truncated(objects: Path, victim: Path) -> Path:
    victim.write_bytes(victim.read_bytes()[:-10])
    return victim


def emptied(objects: Path, victim: Path) -> Path:
    victim.write_bytes(b"")
    return victim


def not_yaml(objects: Path, victim: Path) -> Path:
    return _rehome(objects, b"schema: [unclosed\n\t- : :\n")


def not_a_mapping(objects: Path, victim: Path) -> Path:
    return _rehome(objects, b"- 1\n- 2\n")


def unknown_schema_version(objects: Path, victim: Path) -> Path:
    record = canonical.load(victim.read_bytes())
    record["schema"] = "cmfgit/execution/99"
    return _rehome(objects, canonical.dump(record))


def invalid_field(objects: Path, victim: Path) -> Path:
    record = canonical.load(victim.read_bytes())
    record["exit_code"] = "zero"
    return _rehome(objects, canonical.dump(record))


def missing_field(objects: Path, victim: Path) -> Path:
    record = canonical.load(victim.read_bytes())
    del record["git"]
    return _rehome(objects, canonical.dump(record))


def not_canonical(objects: Path, victim: Path) -> Path:
    # Valid YAML with the same content, but keys out of order: a hand edit.
    lines = victim.read_bytes().splitlines(keepends=True)
    top = [i for i, line in enumerate(lines) if not line.startswith((b" ", b"-"))]
    first, second = top[0], top[1]
    reordered = lines[second:] + lines[first:second]
    data = b"".join(reordered)
    assert canonical.load(data) == canonical.load(victim.read_bytes())
    return _rehome(objects, data)


def unexpected_file(objects: Path, victim: Path) -> Path:
    path = objects / "notes.txt"
    path.write_text("hello\n")
    return path


def unexpected_name(objects: Path, victim: Path) -> Path:
    path = victim.parent / "copy.yaml"
    shutil.copyfile(victim, path)
    return path


def wrong_shard(objects: Path, victim: Path) -> Path:
    rid = victim.parent.name + victim.stem
    other = "00" if rid[:2] != "00" else "01"
    path = objects / other / victim.name
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(victim, path)
    return path


def damaged_pack(objects: Path, victim: Path) -> Path:
    data = victim.read_bytes()
    rid = victim.parent.name + victim.stem
    path = objects / "pack" / "site" / "2026-01.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(pack.serialize({rid: data.replace(b"stage: ", b"stage: X", 1)}))
    return path


DAMAGE = [
    (one_byte_edit, "does not match its id"),
    (truncated, "does not match its id"),
    (emptied, "does not match its id"),
    (not_yaml, "not valid YAML"),
    (not_a_mapping, "mapping"),
    (unknown_schema_version, "unknown schema 'cmfgit/execution/99'"),
    (invalid_field, "exit_code"),
    (missing_field, "missing field 'git'"),
    (not_canonical, "not in canonical form"),
    (unexpected_file, "unexpected file"),
    (unexpected_name, "unexpected file"),
    (wrong_shard, "does not match its id"),
    (damaged_pack, "does not match its id"),
]


_TEMPLATE: list[Path] = []


@pytest.fixture
def logged(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo with 3 records; built once per worker, copied for each test."""
    if not _TEMPLATE:
        template = make_repo(tmp_path_factory.mktemp("fsck-template") / "repo")
        for i in range(3):
            with api.run(pipeline="p", stage=f"s{i}", params={"i": i}, repo=template):
                pass
        _TEMPLATE.append(template)
    repo = tmp_path / "repo"
    shutil.copytree(_TEMPLATE[0], repo, symlinks=True)
    return repo


def test_clean_store_passes_and_temp_files_are_ignored(logged: Path) -> None:
    objects = logged / ".cmf" / "objects"
    (objects / "ab").mkdir(exist_ok=True)
    (objects / "ab" / ".tmp-123-deadbeef").write_bytes(b"half a rec")
    (objects / ".tmp-9-00").write_bytes(b"")
    proc = cmfgit(logged, "fsck")
    assert proc.stdout.strip().splitlines()[-1] == "fsck: 3 record(s) ok"


@pytest.mark.parametrize("damage, reason", DAMAGE, ids=[d.__name__ for d, _ in DAMAGE])
def test_fsck_names_each_bad_file(logged: Path, damage: Damage, reason: str) -> None:
    objects = logged / ".cmf" / "objects"
    victim = sorted(objects.glob("??/*.yaml"))[0]
    bad = damage(objects, victim)
    shown = bad.relative_to(logged).as_posix()

    proc = cmfgit(logged, "fsck", check=False)
    assert proc.returncode == 1, proc.stdout
    problems = [line for line in proc.stdout.splitlines() if not line.startswith("fsck:")]
    assert len(problems) == 1, proc.stdout
    assert problems[0].startswith(shown + ": ") or problems[0].startswith(shown + " ("), problems[0]
    assert reason in problems[0]
    assert "problem(s)" in proc.stdout.splitlines()[-1]
    assert "Traceback" not in proc.stderr


def test_fsck_lists_every_problem(logged: Path) -> None:
    objects = logged / ".cmf" / "objects"
    first, second, _ = sorted(objects.glob("??/*.yaml"))
    named = {one_byte_edit(objects, first), truncated(objects, second), unexpected_file(objects, first)}
    proc = cmfgit(logged, "fsck", check=False)
    assert proc.returncode == 1
    for path in named:
        assert path.relative_to(logged).as_posix() in proc.stdout
    assert proc.stdout.splitlines()[-1] == "fsck: 3 problem(s) in 3 record(s)"


def test_a_good_pack_is_checked_and_clean(logged: Path) -> None:
    objects = logged / ".cmf" / "objects"
    loose = sorted(objects.glob("??/*.yaml"))
    records = {p.parent.name + p.stem: p.read_bytes() for p in loose}
    target = objects / "pack" / "site" / "2026-01.yaml"
    target.parent.mkdir(parents=True)
    target.write_bytes(pack.serialize(records))
    for path in loose:
        path.unlink()
    proc = cmfgit(logged, "fsck")
    assert proc.stdout.strip().splitlines()[-1] == "fsck: 3 record(s) ok"
