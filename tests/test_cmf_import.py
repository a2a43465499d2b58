"""`cmfgit import`: real cmflib 0.1.0 output (set1) into records, idempotently, refusing bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from blake3 import blake3
from cmfdata import (
    ENV,
    EXPORT_JSON,
    LABELS,
    MLMD,
    MODEL,
    PIPELINE,
    SET1,
    STEP_METRICS,
    TEST,
    TRAIN,
    WINE,
    by_path,
    by_stage,
    copy_artifact_files,
    copy_inputs,
    graph,
    import_json,
    lineage,
    object_files,
    records,
)
from conftest import cmfgit, git, make_repo

from cmfgit import mlmd
from cmfgit.cmf_import import import_cmf
from cmfgit.errors import CmfgitError
from cmfgit.graph import Node
from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo


def test_mlmd_reader_gives_what_cmf_metadata_export_wrote() -> None:
    document, version = mlmd.read(MLMD)
    assert version == 10
    assert document == json.loads(EXPORT_JSON.read_text())


def test_import_set1_executions_artifacts_lineage_and_idempotence(repo: Path, tmp_path: Path) -> None:
    mlmd_file, export_file = copy_inputs(tmp_path / "in")
    out = cmfgit(repo, "import", str(mlmd_file))
    assert "2 execution(s)" in out.stdout and "2 new" in out.stdout
    assert "MLMD schema 10" in out.stdout

    stages = by_stage(repo)
    assert sorted(stages) == ["prepare", "train"]
    prep_id, prep = stages["prepare"]
    train_id, train = stages["train"]
    # Identities CMF gave them.
    assert prep["uuid"] == "55393a48-e9da-11f1-a870-02fc00000001"
    assert train["uuid"] == "5cee5b10-e9da-11f1-a04b-02fc00000001"
    assert prep["git"]["commit"] == "25cb63b5b1e6640d5a5e68df3f4fb1f71ce97342"
    assert train["git"]["commit"] == "acf929e4f19eb47f76202c25213d31ebdbdbf007"
    assert prep["git"]["remote"] == train["git"]["remote"] == "/home/ana/wine-quality/remote.git"
    assert prep["source"]["cmf"]["execution"]["properties"]["Git_End_Commit"] == ""
    assert {prep["pipeline"], train["pipeline"]} == {PIPELINE}
    assert (prep["type"], train["type"]) == ("prepare-execution", "train-execution")
    assert prep["command"] == ["/opt/cmfref/generate.py", "stage", "--set", "1", "--name", "prepare"]
    assert prep["started_at"] == "2026-11-26T20:45:36.675000Z"
    # Params: cmflib stored the floats as strings ("0.25"); they come back as numbers.
    assert prep["params"] == {"split": 0.25, "seed": 7}
    assert train["params"] == {"epochs": 5, "lr": 0.01}
    assert prep["source"]["cmf"]["execution"]["custom_properties"]["split"] == "0.25"
    assert prep["source"]["cmf"]["stage"]["custom_properties"] == {"owner": "team-a"}
    assert train["metrics"] == {"final_loss": 0.508952, "rmse": 0.710993}

    # Artifacts by type, with CMF's md5 identities (their bytes are not in this working tree).
    assert [(a["type"], a["hash"]) for a in prep["inputs"]] == [
        ("environment", ENV),
        ("dataset", WINE),
        ("label", LABELS),
    ]
    assert [(a["type"], a["hash"]) for a in prep["outputs"]] == [("dataset", TRAIN), ("dataset", TEST)]
    assert [(a["type"], a["hash"]) for a in train["inputs"]] == [("environment", ENV), ("dataset", TRAIN)]
    assert [a["type"] for a in train["outputs"]] == ["step_metrics", "model", "metrics"]
    outs = by_path(train, "outputs")
    assert outs["artifacts/model/model.pkl"]["hash"] == MODEL
    assert outs["artifacts/model/model.pkl"]["props"] == {"epochs": 5}
    assert outs["artifacts/model/model.pkl"]["source"]["cmf"]["properties"]["model_framework"] == "pure-python"
    assert outs["cmf_artifacts/5cee5b10-e9da-11f1-a04b-02fc00000001/metrics/training_metrics"]["hash"] == STEP_METRICS
    assert outs["training_summary"]["props"] == {"final_loss": 0.508952, "rmse": 0.710993}
    assert by_path(prep, "inputs")["artifacts/raw/wine.csv"]["props"] == {
        "rows": 40,
        "source": "synthetic",
        "labels": "artifacts/labels.csv",
        "labels_uri": "artifacts/labels.csv:4acc5ac0de60a78dbe1f4af4d22dd2d5",
    }
    assert by_path(prep, "inputs")["artifacts/labels.csv"]["props"] == {
        "annotator": "ron",
        "dataset_uri": WINE.split(":")[1],
    }
    assert all(a["kind"] == "external" and a["size"] is None for a in prep["inputs"] + train["outputs"])

    # Lineage over the records: train.csv produced by prepare, consumed by train; the model produced by train.
    g = graph(repo)
    assert g.producers_of(TRAIN) == [prep_id]
    assert g.consumers_of(TRAIN) == [train_id]
    assert g.producers_of(MODEL) == [train_id]
    up = g.lineage(Node("artifact", MODEL), "up")
    assert up.executions() == {prep_id, train_id}
    assert WINE in up.artifacts()
    # The same through `cmfgit lineage`, starting from CMF's identity of an artifact, and the query API.
    execs, arts = lineage(repo, TRAIN)
    assert execs == {prep_id} and {TRAIN, WINE, LABELS, ENV} <= arts
    execs, arts = lineage(repo, TRAIN, "--down")
    assert execs == {train_id} and {MODEL, STEP_METRICS} <= arts
    assert lineage(repo, "artifacts/model/model.pkl")[0] == {prep_id, train_id}
    with CmfQuery(repo) as q:
        assert q.find_producer_execution("artifacts/prepared/train.csv").record_id == prep_id
        assert [e["id"] for e in q.find_producer_executions(TRAIN)] == [prep_id]
        assert q.get_pipeline_stages(PIPELINE) == [f"{PIPELINE}/prepare", f"{PIPELINE}/train"]

    # A second import adds nothing; so does the same pipeline's CMF JSON after its MLMD.
    before = object_files(repo)
    again = import_json(repo, mlmd_file)
    assert (again["written"], again["present"], again["kept"]) == (0, 2, 0)
    from_json = import_json(repo, export_file, "--pipeline", PIPELINE)
    assert from_json["format"] == "cmf-json"
    assert (from_json["written"], from_json["present"]) == (0, 2)
    assert sorted(from_json["ids"]) == sorted([prep_id, train_id])
    assert object_files(repo) == before
    assert len(records(repo)) == 2
    assert "2 record(s) ok" in cmfgit(repo, "fsck").stdout


def test_json_and_mlmd_give_byte_identical_records(tmp_path: Path) -> None:
    mlmd_file, export_file = copy_inputs(tmp_path / "in")
    first = make_repo(tmp_path / "a")
    second = make_repo(tmp_path / "b")
    a = import_json(first, export_file)
    b = import_json(second, mlmd_file)
    assert a["ids"] == b["ids"] and a["written"] == b["written"] == 2
    from cmfgit.store import Store

    for rid in a["ids"]:  # loose or in a pack: an import writes packs, as a pull does
        assert Store(first / ".cmf/objects").get_bytes(rid).data == Store(second / ".cmf/objects").get_bytes(rid).data


def test_changed_cmf_execution_is_not_imported_twice(repo: Path, tmp_path: Path) -> None:
    """CMF updates executions in place; cmfgit keeps the first import (same Execution_uuid)."""
    mlmd_file, export_file = copy_inputs(tmp_path / "in")
    import_json(repo, mlmd_file)
    document = json.loads(export_file.read_text())
    document["Pipeline"][0]["stages"][1]["executions"][0]["custom_properties"]["note"] = "changed later"
    export_file.write_text(json.dumps(document))
    report = import_json(repo, export_file)
    assert (report["written"], report["present"], report["kept"]) == (0, 1, 1)
    assert len(records(repo)) == 2
    out = cmfgit(repo, "import", str(export_file)).stdout
    assert "1 kept as first imported" in out


def test_bytes_present_join_native_runs_by_blake3_and_cmf_md5(repo: Path, tmp_path: Path) -> None:
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    copy_artifact_files(repo)
    report = import_json(repo, mlmd_file)
    assert report["linked"] == 7  # every artifact whose bytes are here (the environment file is not)
    prep_id, prep = by_stage(repo)["prepare"]
    train_csv = by_path(prep, "outputs")["artifacts/prepared/train.csv"]
    real = "blake3:" + blake3((repo / "artifacts/prepared/train.csv").read_bytes()).hexdigest()
    assert train_csv["hash"] == real
    assert train_csv["aliases"] == [TRAIN]
    assert (train_csv["kind"], train_csv["size"]) == ("file", 457)
    env = by_path(prep, "inputs")["cmf_artifacts/python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"]
    assert (env["hash"], env["kind"]) == (ENV, "external")

    # A natively logged run consumes the same file: lineage joins through the blake3.
    cmfgit(
        repo,
        "log-run",
        "-s",
        "evaluate",
        "-i",
        "artifacts/prepared/train.csv",
        "-i",
        "artifacts/model/model.pkl",
        "-o",
        "report.txt",
        "--",
        "sh",
        "-c",
        "wc -l artifacts/prepared/train.csv > report.txt",
    )
    evaluate_id = by_stage(repo)["evaluate"][0]
    train_id = by_stage(repo)["train"][0]
    g = graph(repo)
    assert g.canonical(TRAIN) == real  # CMF's md5 names the same artifact
    assert g.producers_of(TRAIN) == [prep_id]
    assert g.consumers_of(real) == [train_id, evaluate_id]
    report_hash = by_stage(repo)["evaluate"][1]["outputs"][0]["hash"]
    up = g.lineage(Node("artifact", report_hash), "up")
    assert {prep_id, train_id, evaluate_id} <= up.executions()
    down = g.lineage(Node("artifact", g.canonical(WINE) or WINE), "down")
    assert evaluate_id in down.executions()
    assert lineage(repo, TRAIN, "--down")[0] == {train_id, evaluate_id}
    assert lineage(repo, "report.txt")[0] == {prep_id, train_id, evaluate_id}


def test_pipeline_filter(repo: Path, tmp_path: Path) -> None:
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    bad = cmfgit(repo, "import", str(mlmd_file), "--pipeline", "churn", check=False)
    assert bad.returncode == 2
    assert "pipeline 'churn' is not in" in bad.stderr and "wine-quality" in bad.stderr
    assert object_files(repo) == set()
    assert import_json(repo, mlmd_file, "-P", PIPELINE)["written"] == 2


def _refused(repo: Path, path: Path, expected: str) -> None:
    """Through the CLI: one clear line on stderr, non-zero exit, nothing written."""
    proc = cmfgit(repo, "import", str(path), check=False)
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in lines[0], lines[0]
    assert object_files(repo) == set()


def _refused_in_process(repo: Path, path: Path, expected: str) -> None:
    with pytest.raises(CmfgitError) as caught:
        import_cmf(open_repo(repo), path)
    message = str(caught.value)
    assert expected in message and "\n" not in message, message
    assert object_files(repo) == set()


def test_corrupt_or_unknown_input_is_refused_and_nothing_written(repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "bad"
    work.mkdir()
    data = MLMD.read_bytes()

    truncated = work / "truncated-mlmd"
    truncated.write_bytes(data[: len(data) // 2])
    _refused(repo, truncated, "truncated SQLite file")

    future = work / "future-mlmd"
    future.write_bytes(data)
    with sqlite3.connect(future) as con:
        con.execute("UPDATE MLMDEnv SET schema_version = 11")
    con.close()
    _refused(repo, future, "unsupported MLMD schema version 11; cmfgit reads 10")

    other_shape = work / "other.json"
    other_shape.write_text('{"pipelines": [{"name": "p"}]}')
    _refused(repo, other_shape, 'not a CMF export: expected a JSON object {"Pipeline": [...]}')

    header_only = work / "header-only"
    header_only.write_bytes(data[:60])
    _refused_in_process(repo, header_only, "truncated SQLite file")

    damaged = work / "damaged-mlmd"
    damaged.write_bytes(data[:4096] + b"\xff" * 4096 + data[8192:])
    _refused_in_process(repo, damaged, "damaged-mlmd: ")

    not_mlmd = work / "other.sqlite"
    with sqlite3.connect(not_mlmd) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    _refused_in_process(repo, not_mlmd, "not an MLMD file (no table MLMDEnv")

    shapes = {
        "list.json": ("[1, 2, 3]", 'expected a JSON object {"Pipeline": [...]}'),
        "no-stages.json": ('{"Pipeline": [{"name": "p"}]}', "Pipeline[0]: missing 'stages'"),
        "bad-event.json": (
            '{"Pipeline": [{"name": "p", "stages": [{"name": "p/s", "executions": [{"type": "t", '
            '"properties": {}, "custom_properties": {}, "events": [{"type": "x", "artifact": {}}]}]}]}]}',
            "Pipeline[0].stages[0].executions[0].events[0].type: must be int",
        ),
        "nested-value.json": (
            '{"Pipeline": [{"name": "p", "stages": [], "custom_properties": {"k": [1]}}]}',
            "Pipeline[0].custom_properties.k: must be a string or a number",
        ),
        "broken.json": ('{"Pipeline": [', "not valid JSON"),
        "text.txt": ("hello", "neither an MLMD SQLite file nor a CMF export JSON"),
    }
    for name, (text, expected) in shapes.items():
        (work / name).write_text(text)
        _refused_in_process(repo, work / name, expected)

    _refused_in_process(repo, work / "absent", "does not exist")
    _refused_in_process(repo, work, "is a directory")
    assert git(repo, "status", "--porcelain") == ""


def test_import_outside_an_initialised_repo(tmp_path: Path) -> None:
    plain = make_repo(tmp_path / "plain", init_cmfgit=False)
    proc = cmfgit(plain, "import", str(SET1 / "mlmd"), check=False)
    assert proc.returncode == 1 and "cmfgit init" in proc.stderr
    assert not (plain / ".cmf").exists()


def test_imported_secrets_are_redacted(repo: Path, tmp_path: Path) -> None:
    """CMF keeps whatever a script passed; cmfgit applies log-run's redaction before anything reaches git."""
    _, export_file = copy_inputs(tmp_path / "in")
    document = json.loads(export_file.read_text())
    stage = document["Pipeline"][0]["stages"][0]
    stage["custom_properties"]["db_password"] = "pw-in-context-123"
    execution = stage["executions"][0]
    execution["custom_properties"]["api_token"] = "tok-in-params-456"
    execution["properties"]["Execution"] = "['prepare.py', '--password', 'pw-in-argv-789']"
    execution["properties"]["Git_Repo"] = "https://ana:pw-in-url-000@example.com/wine.git"
    execution["events"][1]["artifact"]["custom_properties"]["aws_secret_access_key"] = "key-in-artifact-111"
    export_file.write_text(json.dumps(document))
    report = import_cmf(open_repo(repo), export_file)
    assert report.written == 2
    stored = b"".join(p.read_bytes() for p in (repo / ".cmf" / "objects").rglob("*.yaml"))
    for secret in ("pw-in-context-123", "tok-in-params-456", "pw-in-argv-789", "pw-in-url-000", "key-in-artifact-111"):
        assert secret.encode() not in stored, secret
    prep = by_stage(repo)["prepare"][1]
    assert prep["params"]["api_token"] == "REDACTED"
    assert prep["command"] == ["prepare.py", "--password", "REDACTED"]
    assert prep["git"]["remote"] == "https://ana:REDACTED@example.com/wine.git"
    assert prep["params"]["split"] == 0.25  # the rest is untouched
