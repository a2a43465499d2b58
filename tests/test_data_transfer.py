"""Moving artifact bytes between sites: push, pull, fetch, checkout, get, status, gc."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import (
    b3,
    file_hash,
    fresh_clone,
    lab,
    publish,
    remote_objects,
    run,
    set_cache_outputs,
    temps,
    write_files,
)

GOOD_B, EVIL_B, A_HASH = b3(b"good b\n"), b3(b"evil b\n"), b3(b"a\n")


@pytest.mark.parametrize("kind", ["path", "file-url"])
def test_push_from_one_clone_pull_into_a_fresh_clone(tmp_path: Path, kind: str) -> None:
    store_url = None if kind == "path" else (tmp_path / "store").as_uri()
    site, url, store = lab(tmp_path, store_url)
    write_files(site, {"data/raw.csv": "a,b\n1,2\n", "data/set/x.txt": "x\n", "data/set/y/z.txt": "z\n"})
    write_files(site, {"models/model.pkl": os.urandom(3 << 20)})
    (site / "data" / "set" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(site / "data" / "set" / "run.sh", 0o755)
    run(site, "prepare", inputs=("data/raw.csv",), outputs=("data/set",))
    run(site, "train", inputs=("data/set",), outputs=("models/model.pkl",))
    publish(site)

    push = cmfgit(site, "artifact", "push", "-j", "3").stdout
    # raw.csv, model.pkl, 3 files of the set and its manifest
    assert push.startswith("pushed 6 object(s), 3.1 MB; 0 already there")
    again = json.loads(cmfgit(site, "artifact", "push", "--json").stdout)
    assert again == {"remote": "store", "pushed": 0, "bytes": 0, "already": 6, "unavailable": []}
    assert len(remote_objects(store)) == 6 and temps(store) == []

    other = fresh_clone(tmp_path, url, "analyst")
    assert not (other / "data").exists()
    before = json.loads(cmfgit(other, "status", "--json").stdout)
    assert {(r["path"], r["state"], r["cached"]) for r in before} == {
        ("data/raw.csv", "missing", False),
        ("data/set", "missing", False),
        ("models/model.pkl", "missing", False),
    }
    out = cmfgit(other, "artifact", "pull").stdout
    assert "placed 3 path(s) (5 file(s))" in out  # raw.csv, the set (3 files), the model
    for rel in ("data/raw.csv", "data/set/x.txt", "data/set/y/z.txt", "data/set/run.sh", "models/model.pkl"):
        assert file_hash(other / rel) == file_hash(site / rel), rel
    assert os.stat(other / "data" / "set" / "run.sh").st_mode & 0o111
    after = json.loads(cmfgit(other, "status", "--remote", "--json").stdout)
    assert {(r["path"], r["state"], r["cached"], r["remote"]) for r in after} == {
        ("data/raw.csv", "unchanged", True, True),
        ("data/set", "unchanged", True, True),
        ("models/model.pkl", "unchanged", True, True),
    }
    # Pulling again changes nothing.
    assert "placed 0 path(s) (0 file(s)); 3 unchanged" in cmfgit(other, "artifact", "pull").stdout


def test_push_and_fetch_a_selection(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n", "models/m.pkl": "m\n"})
    prep = run(site, "prepare", outputs=("data/a.csv",))
    run(site, "train", inputs=("data/a.csv",), outputs=("models/m.pkl",))
    publish(site)
    assert "pushed 1 object(s)" in cmfgit(site, "artifact", "push", prep[:10]).stdout
    assert set(remote_objects(store)) == {b3(b"a\n")[7:]}
    assert "pushed 1 object(s)" in cmfgit(site, "artifact", "push", "--stage", "train").stdout
    other = fresh_clone(tmp_path, url, "b")
    assert "fetched 1 object(s)" in cmfgit(other, "artifact", "fetch", "models/m.pkl").stdout
    assert not (other / "models").exists()  # fetch only fills the cache
    assert "fetched 1 object(s)" in cmfgit(other, "artifact", "fetch", "--artifact", b3(b"a\n")[:16]).stdout


def test_a_tampered_remote_object_is_refused_and_nothing_is_placed(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "good a\n", "data/b.csv": "good b\n"})
    run(site, "prepare", outputs=("data/a.csv", "data/b.csv"))
    publish(site)
    cmfgit(site, "artifact", "push")
    bad = store / "blake3" / b3(b"good b\n")[7:9] / b3(b"good b\n")[9:]
    os.chmod(bad, 0o644)
    bad.write_bytes(b"evil b\n")

    other = fresh_clone(tmp_path, url, "b")
    proc = cmfgit(other, "artifact", "pull", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"cmfgit: error: object {GOOD_B} from data remote 'store' is corrupt "
        f"(its bytes hash to {EVIL_B}): refused, nothing placed"
    ]
    assert not (other / "data").exists()
    cache = other / ".git" / "cmf" / "cache" / "blake3"
    assert not (cache / b3(b"good b\n")[7:9] / b3(b"good b\n")[9:]).exists()
    assert temps(other / ".git" / "cmf") == []


def test_an_object_missing_on_the_remote(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    publish(site)
    cmfgit(site, "artifact", "push")
    for obj in remote_objects(store).values():
        obj.unlink()
    other = fresh_clone(tmp_path, url, "b")
    proc = cmfgit(other, "artifact", "pull", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"cmfgit: error: object {A_HASH} is not in data remote 'store'"


def test_push_reads_the_working_tree_only_while_it_holds_the_recorded_bytes(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    set_cache_outputs(site, "none")  # the output is not cached when recorded: only the working tree has it
    write_files(site, {"data/a.csv": "v1\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    write_files(site, {"data/a.csv": "v2, not recorded\n"})
    out = cmfgit(site, "artifact", "push").stdout
    assert "not here   data/a.csv" in out and "1 artifact(s) not available here" in out
    assert json.loads(cmfgit(site, "status", "--json").stdout)[0]["state"] == "modified"
    write_files(site, {"data/a.csv": "v1\n"})  # the recorded bytes again: push reads them from the path
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 1 object(s), 3 B; 0 already there")


def test_checkout_inputs_restores_an_older_dataset_version(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/train.csv": "version 1\n"})
    first = run(site, "train", inputs=("data/train.csv",))
    cmfgit(site, "artifact", "push")  # v1 enters the cache (and the remote)
    write_files(site, {"data/train.csv": "version 2, overwritten\n"})
    second = run(site, "train", inputs=("data/train.csv",))

    # v2 is in no cache: checking out v1 would lose it.
    refused = cmfgit(site, "checkout", first[:12], "--inputs", check=False)
    assert refused.returncode == 1
    assert "would overwrite 1 modified file(s) whose bytes are not in the cache: data/train.csv" in refused.stderr
    assert (site / "data" / "train.csv").read_text() == "version 2, overwritten\n"

    cmfgit(site, "artifact", "add", "data/train.csv")
    assert "placed     data/train.csv" in cmfgit(site, "checkout", first[:12], "--inputs").stdout
    assert (site / "data" / "train.csv").read_text() == "version 1\n"
    assert "unchanged  data/train.csv" in cmfgit(site, "checkout", first[:12]).stdout
    # And back to the newer version; then --force over an unsaved edit.
    cmfgit(site, "checkout", second[:12], "--inputs")
    assert (site / "data" / "train.csv").read_text() == "version 2, overwritten\n"
    write_files(site, {"data/train.csv": "scratch edit\n"})
    cmfgit(site, "checkout", first[:12], "--inputs", "--force")
    assert (site / "data" / "train.csv").read_text() == "version 1\n"


def test_checkout_outputs_makes_a_directory_match_its_manifest(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/out/a.txt": "a\n", "data/out/b/c.txt": "c\n"})
    rid = run(site, "prepare", outputs=("data/out",))
    cmfgit(site, "artifact", "add", "data/out")
    write_files(site, {"data/out/a.txt": "edited\n", "data/out/extra.txt": "new\n"})
    (site / "data" / "out" / "b" / "c.txt").unlink()
    refused = cmfgit(site, "checkout", rid[:12], "--outputs", check=False)
    assert refused.returncode == 1 and "2 modified file(s)" in refused.stderr
    cmfgit(site, "checkout", rid[:12], "--outputs", "--force")
    found = sorted(str(p.relative_to(site / "data" / "out")) for p in (site / "data" / "out").rglob("*") if p.is_file())
    assert found == ["a.txt", "b/c.txt"]
    assert (site / "data" / "out" / "a.txt").read_text() == "a\n"


def test_get_one_artifact_anywhere(tmp_path: Path) -> None:
    site, url, _store = lab(tmp_path)
    write_files(site, {"models/m.pkl": "v1\n"})
    first = run(site, "train", outputs=("models/m.pkl",))
    cmfgit(site, "artifact", "push")
    write_files(site, {"models/m.pkl": "v2\n"})
    run(site, "train", outputs=("models/m.pkl",))
    cmfgit(site, "artifact", "push")
    publish(site)
    other = fresh_clone(tmp_path, url, "b")
    cmfgit(other, "get", f"models/m.pkl@{first[:10]}", "-o", str(tmp_path / "old.pkl"))
    assert (tmp_path / "old.pkl").read_text() == "v1\n"
    cmfgit(other, "get", b3(b"v2\n")[:20], "-o", str(tmp_path / "new.pkl"))
    assert (tmp_path / "new.pkl").read_text() == "v2\n"
    exists = cmfgit(other, "get", "models/m.pkl", "-o", str(tmp_path / "new.pkl"), check=False)
    assert exists.returncode == 1 and "already exists" in exists.stderr


def test_status_states(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n", "data/b.csv": "b\n", "data/c.csv": "c\n", "notes.txt": "n\n"})
    run(site, "prepare", outputs=("data/a.csv", "data/b.csv", "data/c.csv"))
    write_files(site, {"data/b.csv": "changed\n"})
    (site / "data" / "c.csv").unlink()
    rows = json.loads(cmfgit(site, "status", "--json").stdout)
    assert [(r["path"], r["state"]) for r in rows] == [
        ("data/a.csv", "unchanged"),
        ("data/b.csv", "modified"),
        ("data/c.csv", "missing"),
    ]
    named = json.loads(cmfgit(site, "status", "data/a.csv", "notes.txt", "--json").stdout)
    assert [(r["path"], r["state"]) for r in named] == [("data/a.csv", "unchanged"), ("notes.txt", "never recorded")]
    text = cmfgit(site, "status").stdout
    assert "modified" in text and "data/b.csv" in text


def test_gc_drops_only_unreferenced_objects(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/a.csv": "kept\n", "scratch.bin": "dropped\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    cmfgit(site, "artifact", "add", "data/a.csv", "scratch.bin")
    assert "would drop 1 object(s), 8 B; kept 1" in cmfgit(site, "artifact", "gc", "--dry-run").stdout
    assert "dropped 1 object(s), 8 B; kept 1" in cmfgit(site, "artifact", "gc").stdout
    cache = site / ".git" / "cmf" / "cache" / "blake3"
    assert (cache / b3(b"kept\n")[7:9] / b3(b"kept\n")[9:]).exists()
    assert not (cache / b3(b"dropped\n")[7:9]).exists() or not any((cache / b3(b"dropped\n")[7:9]).iterdir())


def test_a_5000_file_dataset_shares_unchanged_files_in_cache_and_remote(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    files = {f"data/images/{i // 500:02}/{i:05}.txt": f"sample {i}\n" for i in range(5000)}
    write_files(site, files)
    run(site, "prepare", outputs=("data/images",))
    assert "pushed 5,001 object(s)" in cmfgit(site, "artifact", "push").stdout
    write_files(site, {f"data/images/00/{i:05}.txt": f"relabelled {i}\n" for i in range(10)})
    run(site, "relabel", outputs=("data/images",))
    out = cmfgit(site, "artifact", "push").stdout
    # v1 (5,000 files and its manifest) is there already; v2 adds 10 files and a manifest.
    assert out.startswith("pushed 11 object(s)") and "5,001 already there" in out
    assert len(remote_objects(store)) == 5000 + 10 + 2
    cache = site / ".git" / "cmf" / "cache" / "blake3"
    assert sum(len(os.listdir(cache / s)) for s in os.listdir(cache)) == 5000 + 10 + 2
    publish(site)
    other = fresh_clone(tmp_path, url, "b")
    assert "placed 1 path(s) (5,000 file(s))" in cmfgit(other, "artifact", "pull").stdout
    assert (other / "data/images/00/00003.txt").read_text() == "relabelled 3\n"
    assert (other / "data/images/09/04999.txt").read_text() == "sample 4999\n"
    shutil.rmtree(other / "data")


def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    site, _url, _store = lab(tmp_path)
    write_files(site, {f"data/set/{i:03}.txt": f"{i}\n" * 1000 for i in range(200)})
    run(site, "prepare", outputs=("data/set",))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", "artifact", "push", "-j", "2"],
        cwd=site,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate()
    os.close(leader)
    assert proc.returncode == 0 and out.startswith("pushed 201 object(s)")
    assert b"pushing" in seen  # drawn on the terminal (and removed when done)
    piped = cmfgit(site, "artifact", "push")  # stderr is a pipe: no bar
    assert piped.stderr == "" and piped.stdout.startswith("pushed 0 object(s)")


def test_temp_files_of_a_killed_placement_are_cleaned_up(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n", "data/d/x.txt": "x\n"})
    rid = run(site, "prepare", outputs=("data/a.csv", "data/d"))
    dead = next(p for p in range(4_000_000, 4_100_000) if not os.path.exists(f"/proc/{p}"))
    (site / "data" / f".tmp-{dead}-0badc0de-a.csv").write_text("half")
    (site / "data" / "d" / f".tmp-{dead}-0badc0de-x.txt").write_text("half")
    (site / "data" / "a.csv").unlink()
    (site / "data" / "d" / "x.txt").unlink()
    cmfgit(site, "checkout", rid[:12])  # no --force: a dead process's temp holds nothing to lose
    assert sorted(os.listdir(site / "data")) == ["a.csv", "d"]
    assert os.listdir(site / "data" / "d") == ["x.txt"]


def test_with_lineage_selects_the_upstream_runs_artifacts(tmp_path: Path) -> None:
    site, _url, store = lab(tmp_path)
    write_files(site, {"data/raw.csv": "raw\n"})
    run(site, "ingest", outputs=("data/raw.csv",))
    write_files(site, {"data/clean.csv": "clean\n"})
    run(site, "clean", inputs=("data/raw.csv",), outputs=("data/clean.csv",))
    write_files(site, {"models/m.pkl": "model\n", "data/other.csv": "unrelated\n"})
    train = run(site, "train", inputs=("data/clean.csv",), outputs=("models/m.pkl",))
    run(site, "other", outputs=("data/other.csv",))
    cmfgit(site, "artifact", "push", train[:12])
    assert set(remote_objects(store)) == {b3(b"clean\n")[7:], b3(b"model\n")[7:]}
    cmfgit(site, "artifact", "push", train[:12], "--with-lineage")
    assert set(remote_objects(store)) == {b3(c)[7:] for c in (b"raw\n", b"clean\n", b"model\n")}


def test_checkout_of_bytes_not_in_the_cache_says_how_to_get_them(tmp_path: Path) -> None:
    site, url, _store = lab(tmp_path)
    write_files(site, {"models/m.pkl": "m\n"})
    rid = run(site, "train", outputs=("models/m.pkl",))
    cmfgit(site, "artifact", "push")
    publish(site)
    other = fresh_clone(tmp_path, url, "b")
    proc = cmfgit(other, "checkout", rid[:12], check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"cmfgit: error: object {b3(b'm' + bytes([10]))} (models/m.pkl) is not in the cache "
        "('cmfgit artifact fetch' brings it from a data remote)"
    )
    cmfgit(other, "artifact", "fetch", rid[:12])
    cmfgit(other, "checkout", rid[:12])
    assert (other / "models" / "m.pkl").read_text() == "m\n"


def test_a_pull_under_a_strict_umask_still_gives_exact_modes(tmp_path: Path) -> None:
    # Placed files and cache objects get their modes whatever the umask (0o077 here):
    # the placing code skips fchmod only where the umask gives the mode anyway.
    site, url, _store = lab(tmp_path)
    files = {f"data/set/f{i:03d}.bin": os.urandom(4096) for i in range(40)}
    write_files(site, files)
    os.chmod(site / "data" / "set" / "f007.bin", 0o755)
    run(site, "prepare", outputs=("data/set",))
    publish(site)
    cmfgit(site, "artifact", "push")
    other = fresh_clone(tmp_path, url, "analyst")
    old = os.umask(0o077)
    try:
        out = cmfgit(other, "artifact", "pull").stdout
    finally:
        os.umask(old)
    assert "placed 1 path(s) (40 file(s))" in out
    for rel, data in files.items():
        placed = other / rel
        assert placed.read_bytes() == data, rel
        want = 0o755 if rel.endswith("f007.bin") else 0o644
        assert placed.stat().st_mode & 0o777 == want, rel
    cache = other / ".git" / "cmf" / "cache" / "blake3"
    objects = [p for shard in cache.iterdir() for p in shard.iterdir()]
    assert len(objects) == 41  # 40 files and the manifest
    assert {p.stat().st_mode & 0o777 for p in objects} == {0o444}
    assert [p for p in objects if p.name.startswith(".tmp-")] == []


def test_a_pull_replaces_a_directory_where_a_file_of_the_dataset_goes(tmp_path: Path) -> None:
    # The directory in the way holds only bytes the cache has, so no --force is needed.
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/set/x.txt": "x\n", "data/set/y.txt": "y\n", "data/x.txt": "x\n"})
    run(site, "prepare", outputs=("data/set", "data/x.txt"))
    publish(site)
    cmfgit(site, "artifact", "push")
    shutil.rmtree(site / "data" / "set")
    write_files(site, {"data/set/x.txt/inner.txt": "x\n", "data/set/y.txt": "y\n"})
    cmfgit(site, "artifact", "pull")
    assert (site / "data" / "set" / "x.txt").read_text() == "x\n"
    assert sorted(os.listdir(site / "data" / "set")) == ["x.txt", "y.txt"]
