"""What a user meets first at a terminal (issue 9, item 14): narrow terminals,
log's columns, log-run's help and errors, shell completion, progress, --since,
--sort's unknown keys, and the test suite's own skip messages."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, cmfgit
from qhelp import execution, put

from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo


def test_skip_messages_say_how_to_get_the_dependency_not_a_path_on_one_machine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cmflib"]
        + ["tests/test_cmf_export.py", "tests/test_compat.py", "tests/test_compat_reuse.py", "tests/test_cmf_query.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CMFLIB_PYTHON": str(tmp_path / "no-such-venv" / "bin" / "python")},
        timeout=300,
    )
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) >= 4, proc.stdout[-3000:]
    for line in skipped:
        reason = line.split(": ", 1)[1]
        assert "pip install cmflib==0.1.0" in reason and "CMFLIB_PYTHON" in reason, line
        assert not re.search(r"(^|\s)/(opt|home|usr|work|tmp)/", reason), line


def _three_runs(repo: Path) -> list[str]:
    return put(
        repo,
        execution("prep", params={"k": 1}, metrics={"rows": 10}, started_at="2026-01-05T10:00:00.000000Z"),
        execution("train", params={"lr": 0.1}, metrics={"acc": 0.9}, started_at="2026-02-05T10:00:00.000000Z"),
        execution("train", params={"lr": 0.2}, metrics={"acc": 0.8}, started_at="2026-03-05T10:00:00.000000Z"),
    )


def test_log_since_takes_pull_s_times_on_both_paths(repo: Path) -> None:
    old, mid, new = _three_runs(repo)
    for env in ({}, {"CMFGIT_NO_FASTPATH": "1"}):
        listed = cmfgit(repo, "log", "--since", "2026-02-01", "--json", env=env).stdout
        assert [o["id"] for o in json.loads(listed)] == [new, mid]
        table = cmfgit(repo, "log", "--since=2026-03-05T10:00Z", env=env).stdout
        assert new[:12] in table and mid[:12] not in table and old[:12] not in table
        assert json.loads(cmfgit(repo, "log", "--since", "7d", "--json", env=env).stdout) == []
        with_where = cmfgit(repo, "log", "--since", "2026-01-01", "-w", "params.lr > 0.15", "--json", env=env)
        assert [o["id"] for o in json.loads(with_where.stdout)] == [new]
        bad = cmfgit(repo, "log", "--since", "last tuesday", check=False, env=env)
        assert bad.returncode == 2 and "--since: 'last tuesday' is not a date" in bad.stderr, bad.stderr
    with CmfQuery(open_repo(repo)) as q:
        assert [o["id"] for o in q.executions(since="2026-02-05T10:00:00Z")] == [new, mid]


def test_sort_by_an_unknown_key_is_an_error_naming_it(repo: Path) -> None:
    _three_runs(repo)
    for env in ({}, {"CMFGIT_NO_FASTPATH": "1"}):
        bad = cmfgit(repo, "log", "--sort", "-metrics.acx", check=False, env=env)
        assert bad.returncode == 2, bad.stdout
        assert "--sort: no execution has metric 'acx' (did you mean 'metrics.acc'?)" in bad.stderr, bad.stderr
        other = cmfgit(repo, "log", "--sort", "params.nothere", check=False, env=env)
        assert other.returncode == 2 and "no execution has param 'nothere'" in other.stderr
        assert cmfgit(repo, "log", "--sort", "tags.nothere", check=False, env=env).returncode == 2
        ok = cmfgit(repo, "log", "--sort", "-metrics.acc", "--json", env=env).stdout
        assert [o["metrics"].get("acc") for o in json.loads(ok)] == [0.9, 0.8, None]
        assert cmfgit(repo, "log", "--sort", "started_at", env=env).returncode == 0


def on_a_terminal(cwd: Path, args: list[str], columns: int, colours: bool = False) -> str:
    """The CLI's stdout on a real pseudo-terminal ``columns`` wide (colours stripped, unless ``colours``)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "200", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", *args], cwd=cwd, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return text if colours else re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _recorded(repo: Path) -> Path:
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "data" / "raw" / "wine-quality-red.csv").write_text("a,b\n1,2\n")
    (repo / "metrics.json").write_text('{"accuracy": 0.93, "loss": 0.123456, "f1_macro": 0.9}')
    cmfgit(repo, "log-run", "-s", "prepare", "-i", "data/raw/wine-quality-red.csv", "-o", "data/train-set.csv",
           "--", "cp", "data/raw/wine-quality-red.csv", "data/train-set.csv")  # fmt: skip
    params = [f"-pp_{i}={i}" for i in range(1, 13)] + ["-poptimizer=adamw", "-plearning_rate=0.001"]
    make_model = ["sh", "-c", "mkdir -p models && echo m > models/model.pkl"]
    cmfgit(repo, "log-run", "-s", "train", *params, "-i", "data/train-set.csv", "-o", "models/model.pkl",
           "--type", "model", "-m", "metrics.json", "--", *make_model)  # fmt: skip
    cmfgit(repo, "tag", "models/model.pkl", "status=production")
    cmfgit(repo, "tag", json.loads(cmfgit(repo, "log", "-n1", "--json").stdout)[0]["id"], "status=production")
    return repo


def test_narrow_terminals_never_cut_an_id_hash_path_time_or_value(repo: Path) -> None:
    _recorded(repo)
    runs = json.loads(cmfgit(repo, "log", "--json").stdout)
    arts = json.loads(cmfgit(repo, "artifacts", "--json").stdout)
    ids = [r["id"][:12] for r in runs]
    times = [r["started_at"][:19].replace("T", " ") for r in runs]
    hashes = [a["hash"][:19] for a in arts]
    paths = ["data/raw/wine-quality-red.csv", "data/train-set.csv", "models/model.pkl", "metrics.json"]
    values = [f"p_{i}={i}" for i in range(1, 13)] + ["optimizer=adamw", "learning_rate=0.001", "loss=0.123456"]
    for columns in (60, 80):
        views = {
            "log": (on_a_terminal(repo, ["log"], columns), ids + times + values + ["status=production"]),
            "artifacts": (on_a_terminal(repo, ["artifacts"], columns), hashes + [paths[0], *paths[2:]] + times[:1]),
            "diff": (on_a_terminal(repo, ["diff", ids[0], ids[1]], columns), ids + hashes[:1] + paths),
            "pipelines": (on_a_terminal(repo, ["pipelines"], columns), times[:1]),
            "lineage": (on_a_terminal(repo, ["lineage", "models/model.pkl"], columns), [i[:8] for i in ids]),
        }
        for name, (text, tokens) in views.items():
            assert all(len(line) <= columns for line in text.splitlines()), (name, columns, text)
            for token in tokens:
                assert token in text, (name, columns, token, text)
        log = views["log"][0]
        assert not re.search(r"\+\d+\b", log), log  # no "+8": every param is shown
        assert log.index("p_2=2") < log.index("p_9=9") < log.index("p_10=10"), log  # natural order
        diff = views["diff"][0]
        at = {key: re.search(rf"params\.{key}\b", diff) for key in ("p_2", "p_10")}
        assert at["p_2"] and at["p_10"] and at["p_2"].start() < at["p_10"].start(), diff


def test_relative_runs_name_executions_newest_first(repo: Path) -> None:
    old, mid, new = _three_runs(repo)
    assert cmfgit(repo, "show", "@1").stdout.startswith(f"id: {new}\n")
    assert cmfgit(repo, "show", "@3", env={"CMFGIT_NO_FASTPATH": "1"}).stdout.startswith(f"id: {old}\n")
    assert json.loads(cmfgit(repo, "show", "prep@1", "--json").stdout)["id"] == old
    assert json.loads(cmfgit(repo, "show", "train@2", "--json").stdout)["id"] == mid
    sides = json.loads(cmfgit(repo, "diff", "train@2", "@1", "--json").stdout)
    assert (sides["a"]["id"], sides["b"]["id"]) == (mid, new)
    assert "status=production" in cmfgit(repo, "tag", "@2", "status=production").stdout
    with CmfQuery(open_repo(repo)) as q:
        assert q.tags_of(mid) == {"status": "production"}
        assert q.execution("@1")["id"] == new
    assert f"execution {new[:12]} (@1)" in cmfgit(repo, "lineage", "@1").stdout
    too_far = cmfgit(repo, "show", "train@3", check=False)
    assert too_far.returncode == 1 and "'train@3': there are only 2 execution(s) of stage 'train'" in too_far.stderr
    zero = cmfgit(repo, "show", "@0", check=False)
    assert zero.returncode == 2 and "runs count from 1" in zero.stderr


def test_a_directory_s_progress_counts_files_and_bytes(repo: Path) -> None:
    (repo / "images").mkdir()
    for i in range(20):
        (repo / "images" / f"{i:02d}.png").write_bytes(bytes([i]) * 100_000)
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "CMFGIT_PROGRESS_AFTER": "0"}  # show the bar at once
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", "log-run", "-i", "images", "--", "true"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode())
    assert proc.returncode == 0 and out == b"", (out, text)  # the bar is on stderr, never on stdout
    assert "hashing images" in text and "20/20 files" in text and "2.0/2.0 MB" in text, text
    assert "cmfgit: recorded" in text


def test_log_run_help_and_errors_read_like_every_other_command(repo: Path) -> None:
    long_help = cmfgit(repo, "log-run", "--help").stdout
    assert long_help == cmfgit(repo, "log-run", "-h").stdout
    assert long_help.startswith("Usage: cmfgit log-run [OPTIONS] -- [COMMAND]...\n"), long_help
    for text in ("Options:\n", "-p, --param KEY=VALUE", "-i, --input PATH", "--params-file FILE[:KEY]", "Examples:"):
        assert text in long_help, text
    assert "usage:" not in long_help and "options:\n" not in long_help  # argparse's
    for log_run_args, log_args in (
        (["--pipelin", "x", "--", "true"], ["--pipelin", "x"]),
        (["--bogus", "--", "true"], ["--bogus"]),
        (["-s"], ["-s"]),
    ):
        ours = cmfgit(repo, "log-run", *log_run_args, check=False)
        theirs = cmfgit(repo, "log", *log_args, check=False)
        assert ours.returncode == theirs.returncode == 2
        assert ours.stderr == theirs.stderr.replace("'cmfgit log --help'", "'cmfgit log-run --help'"), ours.stderr
    typo = cmfgit(repo, "log-run", "--paramz", "a=1", "--", "true", check=False)
    assert typo.stderr.startswith("cmfgit: error: No such option: --paramz") and "--param" in typo.stderr
    assert "(see 'cmfgit log-run --help')" in typo.stderr
    assert not list((repo / ".cmf" / "objects").rglob("*.yaml"))  # nothing ran, nothing was written
    # Unusual but valid forms still run (argparse keeps -i/-o/--type in order).
    cmfgit(repo, "log-run", "-qs", "odd", "-p", "neg=-1", "python", "-c", "pass")
    (run,) = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert (run["stage"], run["params"], run["command"]) == ("odd", {"neg": -1}, ["python", "-c", "pass"])


def test_log_run_declares_the_same_options_for_click_and_argparse() -> None:
    import argparse

    from cmfgit import logrun
    from cmfgit.cli import build_command

    declared = {}
    for action in logrun.build_parser()._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            flag = action.nargs == 0
            declared[action.dest] = (
                sorted(action.option_strings),
                flag,
                None if flag else action.metavar or action.dest.upper(),
                not flag and not isinstance(action, argparse._StoreAction),
                action.help,
            )
    click_side = {}
    for param in build_command().commands["log-run"].params:
        if param.param_type_name == "option" and param.name != "help":
            name = {"input_": "input", "type_": "type"}.get(param.name, param.name)
            flag = bool(param.is_flag)
            click_side[name] = (sorted(param.opts), flag, None if flag else param.metavar, param.multiple, param.help)
    assert click_side == declared
    fast = set(logrun._VALUE_OPTIONS) | set(logrun._FLAG_OPTIONS)
    assert fast == {opt for opts, *_ in declared.values() for opt in opts}


def test_shell_completion_scripts_complete_commands_and_options(repo: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cmfgit").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cmfgit "$@"\n')
    (bin_dir / "cmfgit").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for shell in ("bash", "zsh", "fish"):
        script = cmfgit(repo, "completion", shell).stdout
        assert "cmfgit" in script and f"_CMFGIT_COMPLETE=complete_{shell}" in script, (shell, script)
    asked = """
source <(cmfgit completion bash)
for words in "cmfgit lo" "cmfgit log-run --par" "cmfgit log --si" "cmfgit pu"; do
    COMP_WORDS=($words); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    _cmfgit_completion cmfgit
    echo "${COMPREPLY[*]}"
done
"""
    proc = subprocess.run(["bash", "-c", asked], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["log-run log", "--param --params-file", "--since", "push pull"], proc.stdout
    bad = cmfgit(repo, "completion", "tcsh", check=False)
    assert bad.returncode == 2 and "'tcsh' is not one of bash, zsh, fish" in bad.stderr
