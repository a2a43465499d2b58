"""``cmfgit log-run`` end to end: real repos, real child processes, real git."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from blake3 import blake3
from conftest import cmfgit, git

from cmfgit import canonical


def b3(data: bytes) -> str:
    return "blake3:" + blake3(data).hexdigest()


def records(repo: Path) -> dict[str, dict[str, Any]]:
    """Every loose record, read straight from disk: id -> record."""
    found = {}
    for path in sorted((repo / ".cmf" / "objects").glob("??/*.yaml")):
        data = path.read_bytes()
        rid = path.parent.name + path.stem
        assert canonical.digest(data) == rid
        found[rid] = canonical.load(data)
    return found


def only_new(before: dict[str, Any], repo: Path) -> tuple[str, dict[str, Any]]:
    new = {k: v for k, v in records(repo).items() if k not in before}
    assert len(new) == 1, new
    return next(iter(new.items()))


def recorded_id(stderr: str) -> str:
    match = re.search(r"recorded ([0-9a-f]{12})", stderr)
    assert match, stderr
    return match.group(1)


def test_success_failure_and_signal_death_are_recorded(repo: Path) -> None:
    ok = cmfgit(repo, "log-run", "-s", "ok", "--", "true")
    fail = cmfgit(repo, "log-run", "-s", "fail", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    killed = cmfgit(repo, "log-run", "-s", "killed", "--", "sh", "-c", "kill -9 $$", check=False)
    assert (ok.returncode, fail.returncode, killed.returncode) == (0, 3, 128 + 9)
    # stdio is inherited: the child's output reaches the caller untouched.
    assert fail.stdout == "out\n"
    assert "err\n" in fail.stderr

    by_stage = {r["stage"]: (rid, r) for rid, r in records(repo).items()}
    assert set(by_stage) == {"ok", "fail", "killed"}
    for proc, stage, code in ((ok, "ok", 0), (fail, "fail", 3), (killed, "killed", 137)):
        rid, rec = by_stage[stage]
        assert rid.startswith(recorded_id(proc.stderr))  # the short id is printed on stderr
        assert rec["exit_code"] == code
        assert rec["started_at"] <= rec["ended_at"]
        assert ("error" in rec) == (code != 0)
    assert by_stage["fail"][1]["command"] == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert cmfgit(repo, "fsck").returncode == 0


def test_input_and_output_hashes_are_blake3_of_the_bytes(repo: Path) -> None:
    small = b"a,b\n1,2\n"
    big = os.urandom(3 << 20)  # above the mmap threshold
    (repo / "data").mkdir()
    (repo / "data" / "small.csv").write_bytes(small)
    (repo / "data" / "big.bin").write_bytes(big)
    script = "import sys; d=open('data/big.bin','rb').read(); open('out.bin','wb').write(d[::-1])"
    args = ["-s", "rev", "-i", "data/small.csv", "-i", "data/big.bin", "-o", "out.bin", "--", sys.executable, "-c"]
    before = records(repo)
    cmfgit(repo, "log-run", *args, script)
    _, rec = only_new(before, repo)
    inputs = {a["path"]: a for a in rec["inputs"]}
    assert inputs["data/small.csv"]["hash"] == b3(small)
    assert inputs["data/small.csv"]["size"] == len(small)
    assert inputs["data/big.bin"]["hash"] == b3(big)
    assert inputs["data/big.bin"]["kind"] == "file"
    (out,) = rec["outputs"]
    assert out["path"] == "out.bin"
    assert out["hash"] == b3(big[::-1])
    assert out["size"] == len(big)

    # Again: the stat cache answers now, and must give the same hashes; an
    # input edited in place (same size) is hashed again.
    (repo / "data" / "small.csv").write_bytes(b"a,b\n3,4\n")
    before = records(repo)
    cmfgit(repo, "log-run", *args, script)
    _, rec = only_new(before, repo)
    inputs = {a["path"]: a for a in rec["inputs"]}
    assert inputs["data/small.csv"]["hash"] == b3(b"a,b\n3,4\n")
    assert inputs["data/big.bin"]["hash"] == b3(big)


def expected_manifest(top: Path) -> tuple[str, int, int]:
    """The directory identity as hashing.py's docstring specifies, computed here
    independently: one line per regular file (links followed), sorted by the
    UTF-8 bytes of the path, '<path>\\t<mode>\\t<size>\\t<blake3 hex>\\n'."""
    lines = []
    total = 0
    for dirpath, _dirs, files in os.walk(top, followlinks=True):
        for name in files:
            full = Path(dirpath) / name
            rel = full.relative_to(top).as_posix()
            data = full.read_bytes()
            mode = "100755" if os.stat(full).st_mode & 0o111 else "100644"
            escaped = rel.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            lines.append((rel.encode(), f"{escaped}\t{mode}\t{len(data)}\t{blake3(data).hexdigest()}\n"))
            total += len(data)
    manifest = "".join(line for _, line in sorted(lines)).encode()
    return b3(manifest), total, len(lines)


def test_directory_artifact_is_hashed_as_its_manifest(repo: Path) -> None:
    top = repo / "dataset"
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "empty").mkdir()  # empty directories do not count, as in git
    (top / "a.csv").write_bytes(b"1\n")
    (top / "B.csv").write_bytes(b"2\n")  # sorts before a.csv by bytes
    (top / "sub" / "x.txt").write_bytes(b"x" * 1000)
    (top / "sub" / "deeper" / "ünïcode é.txt").write_bytes("é\n".encode())
    (top / "tab\tname").write_bytes(b"t")
    (top / "run.sh").write_bytes(b"#!/bin/sh\n")
    (top / "run.sh").chmod(0o750)
    (top / "link.csv").symlink_to("a.csv")  # followed: hashed as its content
    expected, size, files = expected_manifest(top)
    assert files == 7

    before = records(repo)
    cmfgit(repo, "log-run", "-s", "use", "-i", "dataset", "--", "true")
    _, rec = only_new(before, repo)
    (art,) = rec["inputs"]
    assert (art["path"], art["kind"], art["hash"], art["size"]) == ("dataset", "dir", expected, size)
    assert art["props"]["files"] == files

    # Content, names and the executable bit are all part of the identity.
    (top / "run.sh").chmod(0o644)
    changed, _, _ = expected_manifest(top)
    assert changed != expected
    before = records(repo)
    cmfgit(repo, "log-run", "-s", "use", "-i", "dataset", "--", "true")
    _, rec = only_new(before, repo)
    assert rec["inputs"][0]["hash"] == changed


def test_commit_commits_only_the_record_and_keeps_staged_work(repo: Path) -> None:
    (repo / "staged.txt").write_text("staged\n")
    (repo / "README.md").write_text("edited and staged\n")
    git(repo, "add", "staged.txt", "README.md")
    (repo / "unstaged.txt").write_text("not staged\n")
    staged_before = git(repo, "diff", "--cached", "--name-only").split()
    head_before = git(repo, "rev-parse", "HEAD").strip()

    proc = cmfgit(repo, "log-run", "--commit", "-s", "train", "--", "true")
    rid = recorded_id(proc.stderr)
    assert "committed" in proc.stderr

    assert git(repo, "diff", "--cached", "--name-only").split() == staged_before == ["README.md", "staged.txt"]
    assert git(repo, "rev-parse", "HEAD~1").strip() == head_before
    changed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert len(changed) == 1 and re.fullmatch(rf"\.cmf/objects/{rid[:2]}/{rid[2:]}[0-9a-f]*\.yaml", changed[0])
    assert rid in git(repo, "show", "--stat", "HEAD")
    # The staged content itself is intact, and the record is not pending any more.
    assert git(repo, "show", ":README.md") == "edited and staged\n"
    assert git(repo, "status", "--porcelain", "--", ".cmf") == ""
    assert "?? unstaged.txt" in git(repo, "status", "--porcelain")


def test_params_are_typed_and_read_from_files(repo: Path) -> None:
    (repo / "params.yaml").write_text(
        "train:\n  lr: 0.01\n  epochs: 5\n  optimizer:\n    name: adam\n    eps: 1.0e-08\n  code: '0777'\nother: 1\n"
    )
    (repo / "params.json").write_text(json.dumps({"seed": 7, "decay": 1e-05, "tags": ["a", "b"], "flag": False}))
    before = records(repo)
    cmfgit(
        repo,
        "log-run",
        "-s",
        "p",
        "--params-file",
        "params.yaml:train",
        "--params-file",
        "params.json",
        "-p",
        "epochs=10",  # the command line wins over files
        "-p",
        "i=3",
        "-p",
        "neg=-2",
        "-p",
        "f=0.5",
        "-p",
        "e=1e-05",
        "-p",
        "t=true",
        "-p",
        "F=False",
        "-p",
        "zip=0777",
        "-p",
        "z=007.5",
        "-p",
        "s=abc",
        "-p",
        "no=no",
        "-p",
        "empty=",
        "-p",
        "eq=a=b",
        "-p",
        "date=2026-01-01",
        "--",
        "true",
    )
    _, rec = only_new(before, repo)
    assert rec["params"] == {
        "lr": 0.01,
        "epochs": 10,
        "optimizer.name": "adam",
        "optimizer.eps": 1e-08,
        "code": "0777",
        "seed": 7,
        "decay": 1e-05,
        "tags": ["a", "b"],
        "flag": False,
        "i": 3,
        "neg": -2,
        "f": 0.5,
        "e": 1e-05,
        "t": True,
        "F": False,
        "zip": "0777",
        "z": "007.5",
        "s": "abc",
        "no": "no",
        "empty": "",
        "eq": "a=b",
        "date": "2026-01-01",
    }
    for key in ("lr", "f", "e", "decay"):
        assert isinstance(rec["params"][key], float)
    assert "other" not in rec["params"]

    # FILE:KEY with a JSON file and a dotted key.
    before = records(repo)
    (repo / "nested.json").write_text(json.dumps({"a": {"b": {"k": 1, "v": "x"}}}))
    cmfgit(repo, "log-run", "-s", "p", "--params-file", "nested.json:a.b", "--", "true")
    _, rec = only_new(before, repo)
    assert rec["params"] == {"k": 1, "v": "x"}


def test_metrics_file_is_read_after_the_command(repo: Path) -> None:
    metrics = "{'acc': 0.9, 'loss': 1e-05, 'n': 3, 'eval': {'f1': 0.5}, 'note': 'x'}"
    script = f"import json; json.dump({metrics}, open('m.json', 'w'))"
    before = records(repo)
    proc = cmfgit(repo, "log-run", "-s", "eval", "-m", "m.json", "--", sys.executable, "-c", script)
    _, rec = only_new(before, repo)
    assert rec["metrics"] == {"acc": 0.9, "loss": 1e-05, "n": 3, "eval.f1": 0.5}
    (out,) = rec["outputs"]
    assert (out["path"], out["type"], out["hash"]) == ("m.json", "metrics", b3((repo / "m.json").read_bytes()))
    assert "note" in proc.stderr  # non-numeric metric named in a warning

    # YAML metrics; a metrics file that never appears is a warning, not a crash.
    before = records(repo)
    proc = cmfgit(repo, "log-run", "-s", "eval", "-m", "none.yaml", "--", "sh", "-c", "exit 2", check=False)
    assert proc.returncode == 2
    _, rec = only_new(before, repo)
    assert rec["metrics"] == {} and rec["exit_code"] == 2
    assert "none.yaml" in proc.stderr


def test_missing_output_is_recorded_as_missing_with_a_warning(repo: Path) -> None:
    before = records(repo)
    proc = cmfgit(
        repo, "log-run", "-s", "make", "-o", "made.txt", "-o", "never.txt", "--", "sh", "-c", "echo hi > made.txt"
    )
    assert proc.returncode == 0
    assert "warning" in proc.stderr and "never.txt" in proc.stderr
    assert "Traceback" not in proc.stderr
    _, rec = only_new(before, repo)
    outputs = {a["path"]: a for a in rec["outputs"]}
    assert outputs["made.txt"]["hash"] == b3(b"hi\n")
    assert outputs["never.txt"] == {
        "path": "never.txt",
        "hash": None,
        "size": None,
        "type": "dataset",
        "kind": "missing",
        "props": {},
    }


def test_type_follows_its_input_or_output(repo: Path) -> None:
    for name in ("raw.csv", "labels.csv", "weights.bin"):
        (repo / name).write_text(name)
    before = records(repo)
    cmfgit(
        repo,
        "log-run",
        "-s",
        "t",
        "-i",
        "raw.csv",
        "-i",
        "labels.csv",
        "--type",
        "label",
        "-o",
        "weights.bin",
        "-o",
        "model.pt",
        "--type",
        "dataset",
        "-o",
        "plain.csv",
        "--",
        "touch",
        "model.pt",
        "plain.csv",
    )
    _, rec = only_new(before, repo)
    types = {a["path"]: a["type"] for a in rec["inputs"] + rec["outputs"]}
    assert types == {
        "raw.csv": "dataset",
        "labels.csv": "label",
        "weights.bin": "model",  # by extension
        "model.pt": "dataset",  # --type wins over the extension
        "plain.csv": "dataset",
    }


def test_stage_and_pipeline_defaults(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "train.py").write_text("print('training')\n")
    before = records(repo)
    cmfgit(repo, "log-run", "--", sys.executable, "-u", "src/train.py")
    _, rec = only_new(before, repo)
    assert (rec["pipeline"], rec["stage"], rec["type"]) == (repo.name, "train", "train")

    before = records(repo)
    cmfgit(repo, "log-run", "--", sys.executable, "-c", "pass")
    _, rec = only_new(before, repo)
    assert rec["stage"].startswith("python")

    before = records(repo)
    cmfgit(repo, "log-run", "-P", "wine", "--execution-type", "fit", "--", "sh", "-c", "true")
    _, rec = only_new(before, repo)
    assert (rec["pipeline"], rec["stage"], rec["type"]) == ("wine", "sh", "fit")

    # Defaults from .cmf/config.yaml.
    config = repo / ".cmf" / "config.yaml"
    doc = canonical.load(config.read_bytes())
    doc.update(pipeline="from-config", stage="cfg-stage")
    config.write_bytes(canonical.dump(doc))
    before = records(repo)
    cmfgit(repo, "log-run", "--", "true")
    _, rec = only_new(before, repo)
    assert (rec["pipeline"], rec["stage"]) == ("from-config", "cfg-stage")


TRAP_SIGINT = """
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(42))
open("ready", "w").close()
for _ in range(1200):
    time.sleep(0.05)
sys.exit(0)
"""


def test_sigint_to_cmfgit_is_forwarded_to_the_command(repo: Path) -> None:
    (repo / "trap.py").write_text(TRAP_SIGINT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", "log-run", "-s", "trap", "--", sys.executable, "trap.py"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (repo / "ready").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 42, stderr
    (rec,) = records(repo).values()
    assert rec["exit_code"] == 42
    assert rec["stage"] == "trap"
    assert "Traceback" not in stderr


def test_log_and_show_json_shapes(repo: Path) -> None:
    (repo / "in.csv").write_text("x\n")
    cmfgit(
        repo,
        "log-run",
        "-P",
        "pipe",
        "-s",
        "one",
        "-p",
        "lr=0.1",
        "-i",
        "in.csv",
        "-o",
        "out.csv",
        "--",
        "cp",
        "in.csv",
        "out.csv",
    )
    cmfgit(repo, "log-run", "-P", "pipe", "-s", "two", "-i", "out.csv", "--", "true")
    cmfgit(repo, "log-run", "-P", "other", "-s", "one", "--", "true")
    head = git(repo, "rev-parse", "HEAD").strip()

    runs = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert isinstance(runs, list) and len(runs) == 3
    assert [r["started_at"] for r in runs] == sorted((r["started_at"] for r in runs), reverse=True)
    for run in runs:
        for key in (
            "id",
            "pipeline",
            "stage",
            "params",
            "metrics",
            "exit_code",
            "started_at",
            "git",
            "inputs",
            "outputs",
        ):
            assert key in run, key
        assert re.fullmatch(r"[0-9a-f]{64}", run["id"])
        assert run["git"]["commit"] == head
        for art in run["inputs"] + run["outputs"]:
            assert {"path", "hash", "type"} <= set(art)
            assert re.fullmatch(r"blake3:[0-9a-f]{64}", art["hash"])
    assert [r["stage"] for r in json.loads(cmfgit(repo, "log", "--json", "-P", "pipe").stdout)] == ["two", "one"]
    assert len(json.loads(cmfgit(repo, "log", "--json", "-s", "one").stdout)) == 2
    newest = json.loads(cmfgit(repo, "log", "--json", "-n", "1").stdout)
    assert [r["id"] for r in newest] == [runs[0]["id"]]

    one = next(r for r in runs if r["stage"] == "one" and r["pipeline"] == "pipe")
    shown = json.loads(cmfgit(repo, "show", one["id"][:8], "--json").stdout)
    assert shown == one
    assert shown["params"] == {"lr": 0.1}
    assert shown["inputs"][0]["hash"] == b3(b"x\n") == shown["outputs"][0]["hash"]
    text = cmfgit(repo, "show", one["id"][:10]).stdout
    assert one["id"] in text and "stage: one" in text
    assert one["id"][:12] in cmfgit(repo, "log").stdout
