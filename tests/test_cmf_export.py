"""`cmfgit export --format cmf-json`: the structure `cmf metadata export` writes, stable through import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from cmfdata import (
    EXPORT_JSON,
    PIPELINE,
    assert_cmf_structure,
    by_stage,
    copy_artifact_files,
    copy_inputs,
    import_json,
    key_levels,
    object_files,
    records,
)
from conftest import CMFLIB_MISSING, CMFLIB_PYTHON, cmfgit, make_repo

from cmfgit import cmf_export

CMF_PYTHON = CMFLIB_PYTHON


def export(repo: Path, out: Path | None = None) -> dict[str, Any]:
    if out is None:
        text = cmfgit(repo, "export", "--format", "cmf-json", "--pipeline", PIPELINE).stdout
        document: dict[str, Any] = json.loads(text)
        return document
    cmfgit(repo, "export", "--format", "cmf-json", "--pipeline", PIPELINE, "-o", str(out))
    document = json.loads(out.read_text())
    return document


def test_export_of_imported_set1_is_what_cmf_wrote(repo: Path, tmp_path: Path) -> None:
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    import_json(repo, mlmd_file)
    out = tmp_path / "out.json"
    document = export(repo, out)
    reference = json.loads(EXPORT_JSON.read_text())
    # Level by level: the same keys, with values of the same kind (nesting).
    assert key_levels(document) == key_levels(reference)
    # And in fact the same document: ids, times, names, properties and uris all survive.
    assert document == reference
    # cmflib's text layout: indent 2, ASCII, no final newline.
    assert out.read_text() == json.dumps(document, indent=2)
    assert export(repo) == document  # stdout and -o agree


def _native_runs(repo: Path) -> None:
    """Natively logged executions of the same pipeline, consuming the imported data."""
    cmfgit(
        repo,
        "log-run",
        "-P",
        PIPELINE,
        "-s",
        "evaluate",
        "-p",
        "threshold=0.5",
        "-i",
        "artifacts/model/model.pkl",
        "-i",
        "artifacts/prepared/test.csv",
        "-o",
        "report.json",
        "--type",
        "metrics",
        "--metrics-file",
        "report.json",
        "--",
        "sh",
        "-c",
        'echo \'{"accuracy": 0.75, "n": 10}\' > report.json',
    )
    script = textwrap.dedent(
        """
        import cmfgit
        params = {"target": "s3", "retries": 2, "layers": [64, 32]}
        with cmfgit.run(pipeline="wine-quality", stage="publish", params=params) as run:
            run.log_input("report.json", type="metrics")
            run.log_output("never-written.txt")
            run.log_metric("upload_seconds", 1.5, step=1)
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True)


def test_export_import_export_is_stable(repo: Path, tmp_path: Path) -> None:
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    copy_artifact_files(repo)
    import_json(repo, mlmd_file)
    _native_runs(repo)
    stages = by_stage(repo)
    assert {"prepare", "train", "evaluate"} <= set(stages)

    first = export(repo, tmp_path / "first.json")
    assert_cmf_structure(first)
    executions = [e for s in first["Pipeline"][0]["stages"] for e in s["executions"]]
    assert len(executions) == len(records(repo))
    evaluate = next(e for e in executions if e["type"] == "evaluate")
    assert evaluate["custom_properties"] == {"threshold": 0.5}
    publish = next(e for e in executions if e["type"] == "publish")
    assert publish["custom_properties"] == {"layers": "[64, 32]", "retries": 2, "target": "s3"}
    # The missing output is left out; the summary metric becomes a CMF Metrics artifact.
    assert [(ev["type"], ev["artifact"]["type"]) for ev in publish["events"]] == [(3, "Dataset"), (4, "Metrics")]
    assert publish["events"][1]["artifact"]["custom_properties"] == {"upload_seconds": 1.5}
    assert evaluate["properties"]["Execution_uuid"] == stages["evaluate"][1]["uuid"]
    kinds = [(ev["type"], ev["artifact"]["type"]) for ev in evaluate["events"]]
    # A metrics *file* is a CMF Dataset; the values (--metrics-file) become a CMF Metrics artifact.
    assert kinds == [(3, "Model"), (3, "Dataset"), (4, "Dataset"), (4, "Metrics")]
    assert evaluate["events"][3]["artifact"]["custom_properties"] == {"accuracy": 0.75, "n": 10}
    # The model's CMF identity (md5 uri) is kept even though cmfgit identifies it by blake3 here.
    assert evaluate["events"][0]["artifact"]["uri"] == "e9559487b9c0fa89fffbc664c048daf0"
    assert evaluate["events"][0]["artifact"]["id"] == 7  # the same artifact as in the imported train execution

    # Re-importing our own export into the same repository adds nothing.
    before = object_files(repo)
    again = import_json(repo, tmp_path / "first.json")
    assert again["written"] == 0 and again["present"] + again["kept"] == len(executions)
    assert object_files(repo) == before

    # Into a fresh repository, and out again: unchanged.
    fresh = make_repo(tmp_path / "fresh")
    report = import_json(fresh, tmp_path / "first.json")
    assert report["written"] == len(executions)
    second = export(fresh, tmp_path / "second.json")
    assert second == first


def test_export_errors(repo: Path, tmp_path: Path) -> None:
    bad = cmfgit(repo, "export", "--format", "mlflow", "-P", PIPELINE, check=False)
    assert bad.returncode == 2 and "unknown export format 'mlflow'" in bad.stderr
    none = cmfgit(repo, "export", "-P", PIPELINE, check=False)
    assert none.returncode == 2 and "no executions of pipeline 'wine-quality'" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
    assert cmf_export.build([], PIPELINE) == {"Pipeline": []}


def _run_cmf(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{CMF_PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _cmflib_available() -> bool:
    if not CMF_PYTHON.exists():
        return False
    probe = subprocess.run([str(CMF_PYTHON), "-c", "import cmflib.cmf_merger"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _cmflib_available(), reason=CMFLIB_MISSING)
def test_cmflib_reads_our_export(repo: Path, tmp_path: Path) -> None:
    """cmflib itself loads our export into a new MLMD (as `cmf metadata pull` does) and exports it again."""
    mlmd_file, _ = copy_inputs(tmp_path / "in")
    copy_artifact_files(repo)
    import_json(repo, mlmd_file)
    _native_runs(repo)
    ours = export(repo, tmp_path / "ours.json")

    project = tmp_path / "cmfproject"
    project.mkdir()
    remote = tmp_path / "remote.git"
    _run_cmf(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    _run_cmf(["cmf", "init", "local", "--path", str(tmp_path / "storage"), "--git-remote-url", str(remote)], project)
    loader = textwrap.dedent(
        """
        import json, sys
        from cmflib.cmf_merger import parse_json_to_mlmd
        from cmflib.cmfquery import CmfQuery
        document = json.load(open(sys.argv[1]))
        for pipeline in document["Pipeline"]:
            assert parse_json_to_mlmd(json.dumps(pipeline), "mlmd", "pull", None) == "success"
        print(CmfQuery("mlmd").dumptojson(sys.argv[2]))
        """
    )
    text = _run_cmf([str(CMF_PYTHON), "-c", loader, str(tmp_path / "ours.json"), PIPELINE], project)
    theirs = json.loads(text.strip().splitlines()[-1])
    assert_cmf_structure(theirs)

    def summary(document: dict[str, Any]) -> list[tuple[str, str, list[tuple[int, str, str]]]]:
        return sorted(
            (
                e["properties"]["Execution_uuid"],
                e["properties"]["Context_Type"],  # cmflib's pull renames execution types after their stage
                [(ev["type"], ev["artifact"]["type"], ev["artifact"].get("uri", "")) for ev in e["events"]],
            )
            for s in document["Pipeline"][0]["stages"]
            for e in s["executions"]
        )

    # Every execution, with its artifacts (type and uri) and event directions, made it into cmflib's store.
    assert summary(theirs) == summary(ours)


def _compat_run(repo: Path, stage: str, stage_props: dict[str, Any] | None, params: dict[str, Any]) -> None:
    script = textwrap.dedent(
        f"""
        from cmfgit.compat import Cmf
        m = Cmf(filepath="mlmd", pipeline_name="p")
        m.create_context(pipeline_stage={stage!r}, custom_properties={stage_props!r})
        m.create_execution(execution_type="T", custom_properties={params!r})
        m.finalize()
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True)


def test_stage_custom_properties_are_the_union_over_the_stage(repo: Path) -> None:
    """CMF keeps a stage's custom properties on its context: a later execution that passes none
    (or other keys) does not drop them; a key passed again takes its latest value."""
    _compat_run(repo, "train", {"owner": "team-a", "gpu": "a100"}, {"run": 1})
    _compat_run(repo, "train", None, {"run": 2})
    _compat_run(repo, "train", {"gpu": "h100", "queue": "long"}, {"run": 3})
    _compat_run(repo, "eval", None, {"run": 4})
    document = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "p").stdout)
    stages = {s["name"]: s for s in document["Pipeline"][0]["stages"]}
    assert stages["p/train"]["custom_properties"] == {"owner": "team-a", "gpu": "h100", "queue": "long"}
    assert stages["p/eval"]["custom_properties"] == {}
    assert len(stages["p/train"]["executions"]) == 3


SET3 = Path(__file__).resolve().parent / "fixtures" / "cmf-set3"
SET1_DIR = EXPORT_JSON.parent


def _maps_sorted(node: Any) -> Any:
    """``node`` with the keys of every ``properties`` / ``custom_properties`` map sorted.

    Those are protobuf maps in ml-metadata: cmflib lists their keys in a different order on every
    run (two ``cmf metadata export`` of one unchanged ``mlmd`` differ there), so no export can
    reproduce cmflib's order there; everything else has one fixed order."""
    if isinstance(node, dict):
        return {
            k: dict(sorted((kk, _maps_sorted(vv)) for kk, vv in v.items()))
            if k in ("properties", "custom_properties") and isinstance(v, dict)
            else _maps_sorted(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_maps_sorted(x) for x in node]
    return node


@pytest.mark.parametrize(
    ("source", "pipeline", "reference"),
    [
        (SET1_DIR / "mlmd", PIPELINE, SET1_DIR / "wine-quality.json"),
        (SET1_DIR / "wine-quality.json", PIPELINE, SET1_DIR / "wine-quality.json"),
        (SET3 / "mlmd", "Test-env", SET3 / "Test-env.json"),
        (SET3 / "Test-env.json", "Test-env", SET3 / "Test-env.json"),
        (SET3 / "mlmd", "test-execution-update", SET3 / "test-execution-update.json"),
        (SET3 / "nano-mlmd", "nano", SET3 / "nano-nano.json"),
    ],
    ids=["set1-mlmd", "set1-json", "set3-mlmd", "set3-json", "set3-update", "set3-nano"],
)
def test_export_of_imported_data_is_cmflibs_text(
    repo: Path, tmp_path: Path, source: Path, pipeline: str, reference: Path
) -> None:
    """The export of imported CMF data is, byte for byte, the text cmflib's export wrote, but for
    the key order inside the properties maps (which cmflib itself does not keep from run to run):
    the executions of a stage newest first (MLMD's order), events in MLMD order, cmflib's key order."""
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    import_json(repo, copy)
    out = tmp_path / "out.json"
    cmfgit(repo, "export", "--format", "cmf-json", "-P", pipeline, "-o", str(out))
    theirs = json.loads(reference.read_text())
    ours = json.loads(out.read_text())
    assert out.read_text() == json.dumps(_maps_sorted(theirs), indent=2)
    assert ours == theirs


def test_a_failed_run_exports_as_failed_and_comes_back_failed(repo: Path, tmp_path: Path) -> None:
    """CMF's export has no outcome field (cmflib never sets MLMD's last_known_state, and its
    export and pull drop it): a failed run is marked in the execution's custom properties, which
    cmflib's pull keeps, and `cmfgit import` reads the mark back as the exit code."""
    cmfgit(repo, "log-run", "-P", "p", "-s", "train", "-p", "lr=0.1", "--", "true")
    failed = cmfgit(repo, "log-run", "-P", "p", "-s", "train", "-p", "lr=0.2", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    out = tmp_path / "p.json"
    cmfgit(repo, "export", "--format", "cmf-json", "-P", "p", "-o", str(out))
    (stage,) = json.loads(out.read_text())["Pipeline"][0]["stages"]
    by_lr = {e["custom_properties"]["lr"]: e["custom_properties"] for e in stage["executions"]}
    assert by_lr[0.1] == {"lr": 0.1}
    error = next(r["error"] for r in records(repo).values() if r["exit_code"] == 3)
    assert by_lr[0.2] == {"lr": 0.2, "Execution_state": "FAILED", "Exit_Code": 3, "Execution_error": error}

    fresh = make_repo(tmp_path / "fresh")
    import_json(fresh, out)
    codes = {r["params"]["lr"]: (r["exit_code"], r.get("error")) for r in records(fresh).values()}
    assert codes == {0.1: (None, None), 0.2: (3, error)}  # CMF keeps no outcome of a success; a failure survives
    assert all(set(r["params"]) == {"lr"} for r in records(fresh).values())
    failed_only = json.loads(cmfgit(fresh, "log", "--json", "--where", "exit_code == 3").stdout)
    assert [r["params"]["lr"] for r in failed_only] == [0.2]
    again = tmp_path / "again.json"
    cmfgit(fresh, "export", "--format", "cmf-json", "-P", "p", "-o", str(again))
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def test_export_gives_the_md5_of_what_cmfgit_pushed_with_dvc_copies(repo: Path, tmp_path: Path) -> None:
    """A file or directory recorded by cmfgit alone (blake3 only) and pushed to a --dvc-copies
    remote is exported with the md5 identity DVC gives it (`<md5>` / `<md5>.dir`), the key under
    which `cmf artifact pull` and `dvc pull` find it on that remote; unpushed, it keeps its blake3."""
    from datahelp import run, write_files

    from cmfgit.data.dvclayout import file_md5, tree_md5

    write_files(repo, {"data/model.bin": b"weights\n", "data/set/a.txt": "a\n", "data/set/sub/b.txt": "b\n"})
    (repo / ".gitignore").write_text("data/\n")
    store = tmp_path / "store"
    store.mkdir()
    cmfgit(repo, "remote", "add", "store", str(store), "--dvc-copies")
    run(repo, "train", outputs=("data/model.bin", "data/set"))

    def uris() -> dict[str, str]:
        document = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "p").stdout)
        (stage,) = document["Pipeline"][0]["stages"]
        return {ev["artifact"]["name"].split(":")[0]: ev["artifact"]["uri"] for ev in stage["executions"][0]["events"]}

    before = uris()
    assert len(before["data/model.bin"]) == 64 and len(before["data/set"]) == 64  # blake3 hex: nothing pushed
    cmfgit(repo, "artifact", "push")
    model_md5, set_md5 = file_md5(repo / "data/model.bin"), tree_md5(repo / "data/set")
    assert (store / "files" / "md5" / set_md5[:2] / f"{set_md5[2:]}.dir").is_file()
    assert uris() == {"data/model.bin": model_md5, "data/set": f"{set_md5}.dir"}


def test_a_directory_carries_dvcs_dir_md5_in_compat_runs_and_imports(repo: Path, tmp_path: Path) -> None:
    """CMF names a directory by DVC's `<md5>.dir` (the md5 of its listing), cmfgit by its blake3
    manifest: compat records the DVC md5 as an alias, the export gives `<md5>.dir`, and an import
    where the directory is present links the CMF artifact to the same blake3 directory."""
    from cmfgit.data.dvclayout import tree_md5

    files = {"raw/a.txt": "a\n", "raw/sub/b.txt": "b\n", "raw/c.bin": "c" * 100}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    script = textwrap.dedent(
        """
        from cmfgit.compat import Cmf
        m = Cmf(filepath="mlmd", pipeline_name="p")
        m.create_context(pipeline_stage="prepare")
        m.create_execution(execution_type="Prepare")
        m.log_dataset("raw", "input")
        m.finalize()
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True)
    dir_md5 = tree_md5(repo / "raw")
    ((_, record),) = records(repo).items()
    (raw,) = [a for a in record["inputs"] if a["path"] == "raw"]
    assert raw["kind"] == "dir" and raw["hash"].startswith("blake3:")
    assert raw["aliases"] == [f"md5:{dir_md5}"]
    out = tmp_path / "p.json"
    cmfgit(repo, "export", "--format", "cmf-json", "-P", "p", "-o", str(out))
    (execution,) = json.loads(out.read_text())["Pipeline"][0]["stages"][0]["executions"]
    (art,) = [ev["artifact"] for ev in execution["events"] if ev["artifact"]["name"].startswith("raw:")]
    assert art["uri"] == f"{dir_md5}.dir" and art["name"] == f"raw:{dir_md5}.dir"

    # Imported where the directory is (a DVC project's working tree): the same blake3 directory.
    fresh = make_repo(tmp_path / "fresh")
    for rel, text in files.items():
        (fresh / rel).parent.mkdir(parents=True, exist_ok=True)
        (fresh / rel).write_text(text)
    report = import_json(fresh, out)
    assert report["linked"] >= 1
    ((_, imported),) = records(fresh).items()
    (again,) = [a for a in imported["inputs"] if a["path"] == "raw"]
    assert (again["hash"], again["kind"], again["aliases"]) == (raw["hash"], "dir", [f"md5:{dir_md5}"])
    found = json.loads(cmfgit(fresh, "lineage", f"md5:{dir_md5}", "--json").stdout)
    assert found["roots"] == [raw["hash"]]
    # A directory whose content differs from the listing's md5 is not linked: it keeps CMF's identity.
    (fresh / "raw" / "a.txt").write_text("changed\n")
    other = make_repo(tmp_path / "other")
    (other / "raw").mkdir()
    (other / "raw" / "a.txt").write_text("changed\n")
    import_json(other, out)
    ((_, kept),) = records(other).items()
    (unlinked,) = [a for a in kept["inputs"] if a["path"] == "raw"]
    assert (unlinked["hash"], unlinked["kind"]) == (f"md5:{dir_md5}", "external")


def test_step_metrics_names_have_cmflibs_uuid_suffix(repo: Path) -> None:
    """cmflib names a Step_Metrics artifact `<path>:<md5>:<execution id>:<uuid1>`; the export gives
    cmfgit's step metrics that shape, with a uuid derived from the record (stable across exports)."""
    script = textwrap.dedent(
        """
        from cmfgit.compat import Cmf
        m = Cmf(filepath="mlmd", pipeline_name="p")
        m.create_context(pipeline_stage="train")
        m.create_execution(execution_type="Train")
        m.log_metric("training_metrics", {"loss": 0.5})
        m.log_metric("training_metrics", {"loss": 0.25})
        m.commit_metrics("training_metrics")
        m.finalize()
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True)

    def step_names() -> list[str]:
        document = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "p").stdout)
        (execution,) = document["Pipeline"][0]["stages"][0]["executions"]
        return [ev["artifact"]["name"] for ev in execution["events"] if ev["artifact"]["type"] == "Step_Metrics"]

    (name,) = step_names()
    path, uri, eid, suffix = name.split(":")
    assert "/metrics/training_metrics" in path and len(uri) == 32 and eid.isdigit()
    assert str(uuid.UUID(suffix)) == suffix
    assert step_names() == [name]


# cmflib's own answers about one MLMD store, after loading CMF export files into it (as `cmf
# metadata pull` does): pipeline stages, each stage's executions (minus ids and times), every
# artifact name, and each artifact's children, parents and producer.
_CMFLIB_ANSWERS = textwrap.dedent(
    """
    import json, sys
    from cmflib.cmf_merger import parse_json_to_mlmd
    from cmflib.cmfquery import CmfQuery
    store, loads = sys.argv[1], sys.argv[2:]
    for path in loads:
        for pipeline in json.load(open(path))["Pipeline"]:
            assert parse_json_to_mlmd(json.dumps(pipeline), store, "pull", None) == "success"
    q = CmfQuery(store)
    SKIP = {"id", "create_time_since_epoch", "last_update_time_since_epoch", "type_id", "Context_ID", "Pipeline_id"}
    def rows(df):
        return sorted(json.dumps({c: str(r[c]) for c in df.columns if c not in SKIP}, sort_keys=True)
                      for _, r in df.iterrows())
    def names(df):
        return [] if df is None or df.empty else sorted(df["name"])
    out = {"stages": {}, "executions": {}, "children": {}, "parents": {}, "producer": {}}
    for p in sorted(q.get_pipeline_names()):
        out["stages"][p] = sorted(q.get_pipeline_stages(p))
        for s in out["stages"][p]:
            out["executions"][s] = rows(q.get_all_executions_in_stage(s))
    out["artifacts"] = sorted(q.get_all_artifacts())
    for name in out["artifacts"]:
        out["children"][name] = names(q.get_all_child_artifacts(name))
        out["parents"][name] = names(q.get_all_parent_artifacts(name))
        prod = q.find_producer_execution(name)
        out["producer"][name] = None if prod is None else prod.properties["Execution_uuid"].string_value
    print(json.dumps(out, sort_keys=True))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not _cmflib_available(), reason=CMFLIB_MISSING)
def test_cmflib_answers_the_same_about_our_export_of_set3(repo: Path, tmp_path: Path) -> None:
    """cmflib loads cmfgit's export of the imported set3 store with its own loader and its CmfQuery
    then answers exactly as about the fixture's own exports loaded the same way; and as about the
    fixture's MLMD store itself, but for the execution id that cmflib's loader writes into Model
    and Metrics names (it numbers executions anew, in document order)."""
    copy = tmp_path / "mlmd-in"
    copy.write_bytes((SET3 / "mlmd").read_bytes())
    import_json(repo, copy)
    ours = []
    for pipeline in ("Test-env", "test-execution-update"):
        out = tmp_path / f"ours-{pipeline}.json"
        cmfgit(repo, "export", "--format", "cmf-json", "-P", pipeline, "-o", str(out))
        ours.append(str(out))
    project = tmp_path / "cmfproject"
    project.mkdir()
    remote = tmp_path / "remote.git"
    _run_cmf(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    _run_cmf(["cmf", "init", "local", "--path", str(tmp_path / "storage"), "--git-remote-url", str(remote)], project)

    def answers(store: str, *loads: str) -> dict[str, Any]:
        text = _run_cmf([str(CMF_PYTHON), "-c", _CMFLIB_ANSWERS, store, *loads], project)
        found: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
        return found

    theirs_pulled = answers("mlmd-theirs", str(SET3 / "Test-env.json"), str(SET3 / "test-execution-update.json"))
    ours_pulled = answers("mlmd-ours", *ours)
    assert ours_pulled == theirs_pulled
    assert len(ours_pulled["artifacts"]) == 15 and ours_pulled["children"]  # not vacuous

    original = tmp_path / "mlmd-original"
    original.write_bytes((SET3 / "mlmd").read_bytes())
    direct = answers(str(original))
    assert ours_pulled["stages"] == direct["stages"] and ours_pulled["executions"] == direct["executions"]

    def without_exec_ids(found: dict[str, Any]) -> str:
        import re

        return re.sub(r'((?:model\.pkl:[0-9a-f]{32}|metrics:[0-9a-f-]{36}):)\d+"', r'\1N"', json.dumps(found))

    assert without_exec_ids(ours_pulled) == without_exec_ids(direct)
