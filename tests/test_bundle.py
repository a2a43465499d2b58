"""Offline sites (issue 11, item 5): `cmfgit bundle create` at a site with no link, and
`cmfgit bundle import` at the central bare repository or at another site, with real git."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from conftest import cmfgit, git
from datahelp import file_hash, remote_objects, run, temps, write_files
from sites import clone_site, loose_ids, records_at, seed_remote

from cmfgit import canonical
from cmfgit.repo import open_repo
from cmfgit.store import Store

GLOBAL = "cmf/global"


def _offline_site(tmp: Path, name: str = "edge") -> tuple[Path, Path, str]:
    """A central bare repository and a site cloned from it that then lost its link."""
    bare, url = seed_remote(tmp)
    site = clone_site(tmp, url, name)
    (site / ".gitignore").write_text("data/\nmodels/\n")
    git(site, "add", ".gitignore")
    git(site, "commit", "-q", "-m", "ignore data")
    git(site, "remote", "remove", "origin")  # offline: no remote at all
    return bare, site, url


def _site_records(site: Path) -> dict[str, bytes]:
    return {r.id: r.data for r in Store(open_repo(site).objects_dir).iter_records()}


def _cache_objects(git_dir: Path) -> dict[str, bytes]:
    root = git_dir / "cmf" / "cache" / "blake3"
    found: dict[str, bytes] = {}
    for shard in root.iterdir() if root.is_dir() else []:
        for obj in shard.iterdir():
            if not obj.name.startswith(".tmp-"):
                found[shard.name + obj.name] = obj.read_bytes()
    return found


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def _log_runs(site: Path) -> dict[str, bytes]:
    write_files(site, {"data/raw.csv": "x,y\n1,2\n3,4\n", "data/set/a.txt": "a\n", "data/set/b.txt": "b\n"})
    prepared = run(site, "prepare", inputs=("data/raw.csv",), outputs=("data/set",))
    write_files(site, {"models/m.bin": b"\x00model\x01" * 100})
    run(site, "train", inputs=("data/set",), outputs=("models/m.bin",))
    cmfgit(site, "tag", prepared, "reviewed=yes")
    git(site, "add", ".cmf")
    git(site, "commit", "-q", "-m", "runs logged offline")  # committed, and one more left pending:
    run(site, "evaluate", inputs=("models/m.bin",))
    return _site_records(site)


def test_an_offline_sites_bundle_brings_every_record_and_object_to_the_central(tmp_path: Path) -> None:
    bare, site, url = _offline_site(tmp_path)
    records = _log_runs(site)
    assert len(records) == 4  # three runs (one still pending) and a tag
    out = cmfgit(site, "bundle", "create", str(tmp_path / "edge.cmfb"), "--with-data").stdout
    # 5 objects: raw.csv, a.txt, b.txt, the directory's manifest, m.bin
    assert f"bundle     {tmp_path / 'edge.cmfb'}: 4 record(s), 5 object(s)" in out and "from site edge" in out
    with tarfile.open(tmp_path / "edge.cmfb") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(names[0]).read())  # type: ignore[union-attr]
    assert names[:2] == ["cmfgit-bundle.json", "metadata.bundle"] and len(names) == 7
    assert manifest["format"] == "cmfgit-bundle/1" and manifest["site"] == "edge" and manifest["records"] == 4
    assert [o["kind"] for o in manifest["objects"]] == ["file"] * 4 + ["manifest"]  # manifests last
    assert git(site, "rev-parse", "refs/cmf/bundle/edge").strip() == manifest["commit"]

    before = _refs(bare)
    imported = cmfgit(bare, "bundle", "import", str(tmp_path / "edge.cmfb"))
    assert "site       refs/cmf/sites/edge: +4 record(s)" in imported.stdout
    assert "global     cmf/global: +4 record(s), 4 in the view" in imported.stdout
    assert "data       5 new object(s) in the cache, 0 already there" in imported.stdout
    assert records_at(bare, GLOBAL) == records
    assert records_at(bare, "refs/cmf/sites/edge") == records
    objects = _cache_objects(bare)
    assert set(objects) == {o["blake3"] for o in manifest["objects"]}
    assert objects[file_hash(site / "models" / "m.bin")[7:]] == (site / "models" / "m.bin").read_bytes()
    assert git(bare, "rev-parse", "main").strip() in before  # the code branch is left alone

    # Twice: nothing new, no new commit anywhere, nothing duplicated.
    after = _refs(bare)
    again = cmfgit(bare, "bundle", "import", str(tmp_path / "edge.cmfb"))
    assert again.stdout.strip() == f"nothing new: the 4 record(s) and 5 object(s) of {tmp_path / 'edge.cmfb'} are here"
    assert _refs(bare) == after
    assert git(bare, "rev-list", "--count", GLOBAL).strip() == "1"
    assert set(_cache_objects(bare)) == set(objects) and temps(bare) == []
    # The central has no data remote of its own: -r takes a path (or URL) to upload to.
    store = tmp_path / "store"
    store.mkdir()
    relayed = cmfgit(bare, "bundle", "import", str(tmp_path / "edge.cmfb"), "-r", str(store)).stdout
    assert f"data       {store}: uploaded 5 object(s)" in relayed and _refs(bare) == after
    assert set(remote_objects(store)) == set(objects)

    # A fresh clone of the central sees every record in its global view.
    fresh = clone_site(tmp_path, url, "analyst")
    pulled = cmfgit(fresh, "pull").stdout
    assert "global     origin/cmf/global: 4 record(s), all selected" in pulled
    assert "local view 4 new record(s) written" in pulled
    assert _site_records(fresh) == records
    shown = json.loads(cmfgit(fresh, "log", "--global", "--json").stdout)
    assert {e["id"] for e in shown} == {rid for rid, data in records.items() if b"cmfgit/execution/1" in data}

    # A hub passes it on: a bundle made in the bare central holds its global view.
    region = tmp_path / "region.git"
    git(tmp_path, "init", "-q", "--bare", str(region))
    cmfgit(bare, "bundle", "create", str(tmp_path / "hub.cmfb"), "--with-data")
    cmfgit(region, "bundle", "import", str(tmp_path / "hub.cmfb"))
    assert records_at(region, GLOBAL) == records and _cache_objects(region) == objects


def test_import_at_another_site_writes_pending_records_and_verified_objects(tmp_path: Path) -> None:
    _bare, site, url = _offline_site(tmp_path)
    records = _log_runs(site)
    cmfgit(site, "bundle", "create", str(tmp_path / "edge.cmfb"), "--with-data")
    other = clone_site(tmp_path, url, "lab")
    out = cmfgit(other, "bundle", "import", str(tmp_path / "edge.cmfb")).stdout
    assert "records    4 new record(s) of 4 written (pending: commit them, or run 'cmfgit push')" in out
    assert "data       5 new object(s) in the cache" in out
    assert _site_records(other) == records
    # The bytes arrived intact: a run's outputs are placed from the cache alone.
    train = next(rid for rid, data in records.items() if b"stage: train" in data)
    cmfgit(other, "checkout", train)
    assert file_hash(other / "models" / "m.bin") == file_hash(site / "models" / "m.bin")
    assert (other / "data" / "set" / "b.txt").read_text() == "b\n"
    again = cmfgit(other, "bundle", "import", str(tmp_path / "edge.cmfb")).stdout
    assert again.startswith("nothing new: the 4 record(s) and 5 object(s)")
    assert _site_records(other) == records
    # -r: the objects also go to a data remote (only what it lacks).
    store = tmp_path / "store"
    store.mkdir()
    cmfgit(other, "remote", "add", "store", str(store))
    relayed = cmfgit(other, "bundle", "import", str(tmp_path / "edge.cmfb"), "-r", "store").stdout
    assert "data       store: uploaded 5 object(s)" in relayed
    assert set(remote_objects(store)) == set(_cache_objects(other / ".git"))
    assert len(remote_objects(store)) == 5


def test_a_selection_carries_its_runs_their_annotations_and_no_data_without_with_data(tmp_path: Path) -> None:
    bare, site, _url = _offline_site(tmp_path)
    records = _log_runs(site)
    train = next(rid for rid, data in records.items() if b"stage: train" in data)
    out = cmfgit(site, "bundle", "create", str(tmp_path / "train.cmfb"), "--stage", "train", "--json").stdout
    assert json.loads(out)["records"] == 1 and json.loads(out)["objects"] == 0
    cmfgit(bare, "bundle", "import", str(tmp_path / "train.cmfb"))
    assert set(records_at(bare, GLOBAL)) == {train}
    # By run id, with its lineage: the producer of its input and the tag on that producer come along.
    cmfgit(site, "bundle", "create", str(tmp_path / "up.cmfb"), train[:12], "--with-lineage")
    imported = cmfgit(bare, "bundle", "import", str(tmp_path / "up.cmfb")).stdout
    assert "global     cmf/global: +2 record(s), 3 in the view" in imported
    evaluate = next(rid for rid, data in records.items() if b"stage: evaluate" in data)
    assert set(records_at(bare, GLOBAL)) == set(records) - {evaluate}
    assert _cache_objects(bare) == {}
    nothing = cmfgit(site, "bundle", "create", str(tmp_path / "none.cmfb"), "--pipeline", "nope", check=False)
    assert nothing.returncode == 1 and "nothing to bundle" in nothing.stderr
    assert not (tmp_path / "none.cmfb").exists()


def test_overlapping_bundles_bring_only_what_is_new(tmp_path: Path) -> None:
    bare, site, _url = _offline_site(tmp_path)
    first = {run(site, "prepare"), run(site, "train")}
    cmfgit(site, "bundle", "create", str(tmp_path / "one.cmfb"))
    cmfgit(bare, "bundle", "import", str(tmp_path / "one.cmfb"))
    later = run(site, "evaluate")
    cmfgit(site, "bundle", "create", str(tmp_path / "two.cmfb"))  # everything again, and the new run
    out = cmfgit(bare, "bundle", "import", str(tmp_path / "two.cmfb")).stdout
    assert "site       refs/cmf/sites/edge: +1 record(s)" in out
    assert "global     cmf/global: +1 record(s), 3 in the view" in out
    assert set(records_at(bare, GLOBAL)) == first | {later}
    # A site whose store holds a damaged record makes no bundle: it says which, writes nothing.
    path = site / ".cmf" / "objects" / later[:2] / f"{later[2:]}.yaml"
    path.write_bytes(path.read_bytes().replace(b"stage: evaluate", b"stage: evaluat"))
    refused = cmfgit(site, "bundle", "create", str(tmp_path / "three.cmfb"), check=False)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        f"cmfgit: error: record {later[:12]}: content does not match its id (edited or corrupted)"
    ]
    assert not (tmp_path / "three.cmfb").exists() and temps(tmp_path) == []
    # The older bundle, arriving late, is in already: no new commit.
    tips = _refs(bare)
    again = cmfgit(bare, "bundle", "import", str(tmp_path / "one.cmfb")).stdout
    assert again.startswith("nothing new: the 2 record(s)") and _refs(bare) == tips
    assert git(bare, "rev-list", "--count", GLOBAL).strip() == "2"
    assert git(bare, "rev-list", "--count", "refs/cmf/sites/edge").strip() == "2"


def test_imports_racing_in_one_central_lose_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    bare, _url = seed_remote(tmp_path)
    made: set[str] = set()
    bundles = []
    for name in ("edge", "ship", "lab"):
        site = clone_site(tmp_path, bare.as_uri(), name)
        made |= {run(site, "prepare"), run(site, "train")}
        bundles.append(tmp_path / f"{name}.cmfb")
        cmfgit(site, "bundle", "create", str(bundles[-1]))
    racing = [
        subprocess.Popen([sys.executable, "-m", "cmfgit", "bundle", "import", str(b)], cwd=bare, stderr=subprocess.PIPE)
        for b in bundles
    ]
    assert [p.wait() for p in racing] == [0, 0, 0], [p.stderr.read() for p in racing if p.stderr]
    assert set(records_at(bare, GLOBAL)) == made
    for name in ("edge", "ship", "lab"):
        assert len(records_at(bare, f"refs/cmf/sites/{name}")) == 2


# -- bad input: one line, non-zero, nothing written -------------------------------------------


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def _write_container(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _refused(central: Path, bundle: Path, *words: str) -> str:
    before, cached = _refs(central), _cache_objects(central)
    proc = cmfgit(central, "bundle", "import", str(bundle), check=False)
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfgit: error: ") and "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert proc.stdout == ""
    assert _refs(central) == before and _cache_objects(central) == cached
    assert temps(central / "cmf") == [] if (central / "cmf").exists() else True
    print(lines[0])
    return lines[0]


def _real_bundle(tmp: Path) -> tuple[Path, Path]:
    bare, site, _url = _offline_site(tmp)
    _log_runs(site)
    path = tmp / "edge.cmfb"
    cmfgit(site, "bundle", "create", str(path), "--with-data")
    return bare, path


def test_a_file_that_is_no_bundle_or_a_truncated_one_is_refused(tmp_path: Path) -> None:
    bare, good = _real_bundle(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a bundle\n" * 100)
    _refused(bare, text, "not a cmfgit bundle")
    _refused(bare, tmp_path / "absent.cmfb", "no such file")
    data = good.read_bytes()
    with tarfile.open(good) as tar:
        last = tar.getmembers()[-1]
    # Cut in the middle, in the last object's bytes, in its header, and in the manifest.
    # (Cutting only tar's zero padding after the last member loses nothing: that imports.)
    end = last.offset_data + last.size
    for cut in (end // 2, end - 1, last.offset + 100, 1536):
        short = tmp_path / f"short-{cut}.cmfb"
        short.write_bytes(data[:cut])
        _refused(bare, short, str(short))
    proc = cmfgit(bare, "bundle", "import", str(tmp_path / f"short-{end - 1}.cmfb"), check=False)
    assert "truncated" in proc.stderr
    # The whole file still imports after all that.
    cmfgit(bare, "bundle", "import", str(good))
    assert len(records_at(bare, GLOBAL)) == 4


def test_tampered_metadata_or_an_object_that_does_not_match_its_name_is_refused(tmp_path: Path) -> None:
    bare, good = _real_bundle(tmp_path)
    members = _members(good)
    meta = dict(members)["metadata.bundle"]
    flipped = meta[:-30] + bytes([meta[-30] ^ 1]) + meta[-29:]
    _write_container(tmp_path / "meta.cmfb", [(n, flipped if n == "metadata.bundle" else d) for n, d in members])
    _refused(bare, tmp_path / "meta.cmfb", "metadata.bundle is corrupt")
    name, data = members[2]  # an object: same size, other bytes
    other = bytes([data[0] ^ 0xFF]) + data[1:]
    _write_container(tmp_path / "obj.cmfb", [(n, other if n == name else d) for n, d in members])
    _refused(bare, tmp_path / "obj.cmfb", f"object blake3:{name.replace('objects/blake3/', '').replace('/', '')}")
    # A member the manifest does not list, and a manifest that is not one.
    _write_container(tmp_path / "extra.cmfb", [*members, ("objects/blake3/../../evil", b"x")])
    _refused(bare, tmp_path / "extra.cmfb", "is not in its manifest")
    _write_container(tmp_path / "json.cmfb", [("cmfgit-bundle.json", b"{not json"), *members[1:]])
    _refused(bare, tmp_path / "json.cmfb", "not a cmfgit bundle")
    # A site name with a line break would forge a trailer in the view's commit message.
    doc = json.loads(members[0][1])
    forged = json.dumps({**doc, "site": "edge\nCmfgit-Source: " + "0" * 40}).encode()
    _write_container(tmp_path / "site.cmfb", [("cmfgit-bundle.json", forged), *members[1:]])
    _refused(bare, tmp_path / "site.cmfb", "bad site name")
    # --no-data does not read the objects: the records still arrive, and only they.
    out = cmfgit(bare, "bundle", "import", str(tmp_path / "obj.cmfb"), "--no-data").stdout
    assert "+4 record(s)" in out and _cache_objects(bare) == {}


def _handmade(tmp: Path, record: bytes, site: str = "edge") -> Path:
    """A bundle built by hand to the documented format, holding one loose record."""
    from blake3 import blake3

    rid = canonical.digest(record)
    work = tmp / "handmade"
    work.mkdir()
    git(work, "init", "-q")
    target = work / ".cmf" / "objects" / rid[:2] / f"{rid[2:]}.yaml"
    target.parent.mkdir(parents=True)
    target.write_bytes(record)
    git(work, "add", ".cmf")
    git(work, "commit", "-q", "-m", "a record")
    git(work, "update-ref", f"refs/cmf/bundle/{site}", "HEAD")
    git(work, "bundle", "create", "-q", str(tmp / "meta.bundle"), f"refs/cmf/bundle/{site}")
    meta = (tmp / "meta.bundle").read_bytes()
    manifest = {
        "format": "cmfgit-bundle/1",
        "site": site,
        "ref": f"refs/cmf/bundle/{site}",
        "commit": git(work, "rev-parse", "HEAD").strip(),
        "records": 1,
        "metadata": {"size": len(meta), "blake3": blake3(meta).hexdigest()},
        "objects": [],
    }
    path = tmp / "handmade.cmfb"
    _write_container(path, [("cmfgit-bundle.json", json.dumps(manifest).encode()), ("metadata.bundle", meta)])
    return path


def test_a_bundle_whose_records_fail_validation_is_refused(tmp_path: Path) -> None:
    bare, _url = seed_remote(tmp_path)
    # Canonical, and named by its hash, but no valid execution: the schema check refuses it.
    bad = canonical.dump({"schema": "cmfgit/execution/1", "pipeline": "p"})
    path = _handmade(tmp_path, bad)
    _refused(bare, path, "refused, nothing imported", f"record {canonical.digest(bad)[:12]}")
    assert git(bare, "rev-parse", "--verify", "--quiet", GLOBAL, check=False) == ""
    # The same hand-made container with a valid record imports: the format is as documented.
    site = clone_site(tmp_path, bare.as_uri(), "lab")
    rid = run(site, "prepare")
    record = (site / ".cmf" / "objects" / rid[:2] / f"{rid[2:]}.yaml").read_bytes()
    (tmp_path / "second").mkdir()
    ok = _handmade(tmp_path / "second", record)
    out = cmfgit(bare, "bundle", "import", str(ok)).stdout
    assert "global     cmf/global: +1 record(s), 1 in the view" in out
    assert set(records_at(bare, GLOBAL)) == {rid}
    assert "refs/cmf/sites/edge " in _refs(bare)


def test_import_at_a_clone_writes_packs_as_a_pull_does(tmp_path: Path) -> None:
    _bare, site, url = _offline_site(tmp_path)
    for i in range(8):  # one site and month: one pack, no record half of it
        run(site, f"step{i}")
    records = _site_records(site)
    assert len(records) == 8
    cmfgit(site, "bundle", "create", str(tmp_path / "edge.cmfb"))
    other = clone_site(tmp_path, url, "lab")
    out = cmfgit(other, "bundle", "import", str(tmp_path / "edge.cmfb")).stdout
    assert "records    8 new record(s) of 8 written" in out
    objects = other / ".cmf" / "objects"
    packs = sorted(p.relative_to(objects).as_posix() for p in (objects / "pack").rglob("*.yaml"))
    assert len(packs) == 1 and packs[0].startswith("pack/edge/"), packs
    assert loose_ids(other) == set()  # no loose file per record
    assert _site_records(other) == records
    assert cmfgit(other, "fsck").returncode == 0
    again = cmfgit(other, "bundle", "import", str(tmp_path / "edge.cmfb")).stdout
    assert again.startswith("nothing new: the 8 record(s)")
    assert sorted(p.relative_to(objects).as_posix() for p in (objects / "pack").rglob("*.yaml")) == packs


def test_a_sites_next_push_after_its_bundle_was_imported_warns_of_no_shared_name(tmp_path: Path) -> None:
    bare, site, url = _offline_site(tmp_path)
    records = _log_runs(site)
    cmfgit(site, "bundle", "create", str(tmp_path / "edge.cmfb"))
    cmfgit(bare, "bundle", "import", str(tmp_path / "edge.cmfb"))
    # The link is back: the site pushes what it logged since, and what it had bundled.
    git(site, "remote", "add", "origin", url)
    git(site, "fetch", "-q", "origin")
    git(site, "branch", "-q", "--set-upstream-to=origin/main")
    run(site, "report", inputs=("models/m.bin",))
    pushed = cmfgit(site, "push")
    assert "another clone also publishes" not in pushed.stderr, pushed.stderr
    now = _site_records(site)
    assert len(now) == len(records) + 1
    assert set(records_at(bare, "refs/cmf/sites/edge")) == set(now)
    again = cmfgit(site, "push")
    assert "another clone also publishes" not in again.stderr
    # Another clone under the same name: the push that finds its records says so.
    twin = clone_site(tmp_path, url, "twin")
    git(twin, "config", "cmfgit.site", "edge")
    run(twin, "twin")
    cmfgit(twin, "push")
    run(site, "again")
    assert "another clone also publishes as site 'edge'" in cmfgit(site, "push").stderr
