"""The rest of cmflib's ``Cmf`` surface, and its module-level commands, in ``cmfgit.compat`` (issue 14 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cmfdata import records
from conftest import cmfgit, git

from cmfgit import cmf_export
from cmfgit.errors import UsageError
from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo

MD5 = "0123456789abcdef0123456789abcdef"


def test_validation_output_artifact_updates_and_known_versions(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    (repo / "data.csv").write_text("a\n1\n")
    (repo / "labels.csv").write_text("l\n")
    (repo / "model.bin").write_bytes(b"weights")
    cmf = Cmf(filepath="mlmd", pipeline_name="p")
    cmf.create_context("validate")
    cmf.create_execution("Validate")
    data = cmf.log_dataset("data.csv", "input", label="labels.csv")
    model = cmf.log_model("model.bin", "output")
    check = cmf.log_validation_output("v2", {"passed": 1})
    assert cmf.get_artifact(check.id) is check and check.type == "Validation_output"
    with pytest.raises(UsageError, match="no artifact 999"):
        cmf.get_artifact(999)
    cmf.update_existing_artifact(data, {"labels": "more.csv", "reviewed": "yes"})
    cmf.update_dataset_url(data, "remote:/d/1")
    cmf.update_dataset_url(data, "remote:/d/1")  # once
    cmf.update_model_url([model], "remote:/m/1")
    known = cmf.log_dataset_with_version("far/away.csv", MD5, "input", {"url": "s3://b/x"}, {"rows": 3})
    cmf.log_model_with_version("far/model.pkl", "input", {"uri": MD5[::-1]})
    cmf.log_execution_metrics_from_client("scores:4f0c2a40-0000-11f1-0000-000000000000:9", {"auc": 0.5})
    cmf.log_step_metrics_from_client("loss", "5f0c2a40-0000-11f1-0000-000000000000")
    cmf.log_python_env_from_client("env.txt", MD5[:16] * 2)
    cmf.log_label_with_version("far/labels.csv", MD5[1:] + "0")
    assert known.uri == MD5 and known.hash == f"md5:{MD5}"
    rid = cmf.finalize()
    assert rid is not None

    rec = records(repo, "p")[rid]
    by_path = {a["path"]: a for a in rec["inputs"] + rec["outputs"]}
    assert by_path["data.csv"]["props"]["labels"] == "labels.csv,more.csv"
    assert by_path["data.csv"]["props"]["reviewed"] == "yes"
    assert by_path["data.csv"]["source"]["cmf"]["properties"]["url"] == "remote:/d/1"
    assert by_path["model.bin"]["source"]["cmf"]["properties"]["url"] == "remote:/m/1"
    assert by_path["far/away.csv"]["hash"] == f"md5:{MD5}" and by_path["far/away.csv"]["kind"] == "external"
    assert by_path["far/away.csv"]["props"] == {"rows": 3}
    assert by_path["far/model.pkl"]["hash"] == f"md5:{MD5[::-1]}"
    assert rec["metrics"] == {"auc": 0.5}
    validation = by_path[check.uri]
    assert (validation["type"], validation["kind"]) == ("validation_output", "external")
    assert validation["props"] == {"passed": 1}

    # The export says what cmflib's would: Validation_output as an internal output (MLMD event 6).
    document = cmf_export.build(records(repo, "p").items(), "p")
    events = document["Pipeline"][0]["stages"][0]["executions"][0]["events"]
    (val,) = [e for e in events if e["artifact"]["type"] == "Validation_output"]
    assert val["type"] == 6 and val["artifact"]["properties"]["version"] == "v2"
    assert val["artifact"]["custom_properties"] == {"passed": 1}
    names = {e["artifact"]["name"] for e in events}
    assert f"far/away.csv:{MD5}" in names and "scores:4f0c2a40-0000-11f1-0000-000000000000:1" in names

    # An artifact of an execution already written is annotated (tags), and link_artifacts says where it came from.
    cmf.create_execution("Validate-again")
    cmf.update_existing_artifact(model, {"stage": "prod"})
    cmf.link_artifacts(data, model)
    cmf.finalize()
    with CmfQuery(repo) as q:
        assert q.tags_of(model.hash) == {"derived_from": data.hash, "stage": "prod", "url": "remote:/m/1"}


def test_merge_created_context_and_execution_keep_cmf_names(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    cmf = Cmf(filepath="mlmd", pipeline_name="p")
    ctx = cmf.merge_created_context("p/train", {"owner": "x"})
    assert ctx.name == "p/train"
    cmf.merge_created_execution("Train", "['train.py']", {"Execution_uuid": "u-1,u-2"}, {"lr": 1})
    rid = cmf.finalize()
    assert rid is not None
    rec = records(repo, "p")[rid]
    assert (rec["stage"], rec["uuid"], rec["params"]) == ("train", "u-1", {"lr": 1})
    assert rec["source"]["cmf"]["execution"]["properties"]["Execution_uuid"] == "u-1,u-2"


def test_module_commands_init_push_export_and_move_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmfgit import compat

    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "README.md").write_text("code\n")
    git(project, "add", "README.md")
    git(project, "commit", "-q", "-m", "code")
    central = tmp_path / "central.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(central))
    store = tmp_path / "artifact-store"
    monkeypatch.chdir(project)

    said = compat.cmf_init(type="local", path=str(store), git_remote_url=central.as_uri())
    assert "data remote 'cmf'" in said and "origin" in said
    assert git(project, "remote", "get-url", "origin").strip() == central.as_uri()
    with pytest.raises(UsageError, match="unknown type"):
        compat.cmf_init(type="ftp")

    (project / "out").mkdir()
    (project / "out" / "model.bin").write_bytes(b"model bytes")
    cmf = compat.Cmf(filepath="mlmd", pipeline_name="p")
    cmf.create_context("train")
    cmf.create_execution("Train")
    cmf.log_model("out/model.bin", "output")
    cmf.finalize()
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "run")

    assert "exported" in compat.metadata_export("p", "p.json")
    exported = json.loads((project / "p.json").read_text())
    assert [s["name"] for s in exported["Pipeline"][0]["stages"]] == ["p/train"]
    assert "pushed" in compat.metadata_push("p")
    assert git(central, "rev-parse", "main").strip() == git(project, "rev-parse", "HEAD").strip()
    assert "2 new" in compat.artifact_push("p")  # the model and the environment file

    (project / "out" / "model.bin").unlink()
    assert "1 placed" in compat.artifact_pull("p")
    assert (project / "out" / "model.bin").read_bytes() == b"model bytes"

    # Another clone pulls the pipeline's metadata.
    git(tmp_path, "clone", "-q", central.as_uri(), "other")
    other = tmp_path / "other"
    cmfgit(other, "init")
    monkeypatch.chdir(other)
    assert "pulled" in compat.metadata_pull("p")
    assert [r["stage"] for r in records(other, "p").values()] == ["train"]
    assert open_repo(other).root == other
