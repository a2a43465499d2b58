"""`cmfgit push` also pushes data when a default data remote is set; `cmfgit pull --with-data` brings it."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cmfgit
from datahelp import file_hash, fresh_clone, lab, remote_objects, run, write_files


def test_two_sites_the_second_reruns_the_next_stage_on_the_first_sites_bytes(tmp_path: Path) -> None:
    lab_site, url, store = lab(tmp_path)
    write_files(lab_site, {"data/train.csv": "x,y\n1,2\n3,4\n"})
    produced = run(lab_site, "prepare", outputs=("data/train.csv",))
    out = cmfgit(lab_site, "push").stdout
    assert "data       store: pushed 1 object(s)" in out
    assert len(remote_objects(store)) == 1

    analyst = fresh_clone(tmp_path, url, "analyst")
    pulled = cmfgit(analyst, "pull", "--with-data").stdout
    assert "data       store: fetched 1 object(s); placed 1 path(s)" in pulled
    assert file_hash(analyst / "data" / "train.csv") == file_hash(lab_site / "data" / "train.csv")
    rerun = run(analyst, "train", inputs=("data/train.csv",))
    shown = json.loads(cmfgit(analyst, "show", rerun, "--json").stdout)
    upstream = json.loads(cmfgit(analyst, "show", produced, "--json").stdout)
    assert shown["inputs"][0]["hash"] == upstream["outputs"][0]["hash"]


def test_push_without_a_data_remote_or_with_no_data(tmp_path: Path) -> None:
    site, _url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    out = cmfgit(site, "push", "--no-data").stdout
    assert "data " not in out and remote_objects(store) == {}
