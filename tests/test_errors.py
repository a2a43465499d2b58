"""User errors: one line on stderr, a non-zero exit, no traceback, nothing written.

Every case runs the real CLI. For ``log-run`` the command is ``touch ran``:
it must not have run when the error is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import cmfgit, git, make_repo

from cmfgit import canonical
from cmfgit.store import Store

RUN = ["--", "touch", "ran"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (including temp files) with its bytes."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_user_error(
    cwd: Path, args: list[str], *, code: int | None = None, says: str = "", objects: Path | None = None
) -> None:
    case = f"cmfgit {' '.join(args)}"
    objects = objects or cwd / ".cmf" / "objects"
    before = snapshot(objects)
    proc = cmfgit(cwd, *args, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, case
    if code is not None:
        assert proc.returncode == code, (case, proc.returncode, proc.stderr)
    assert len(lines) == 1, (case, proc.stderr)
    assert lines[0].startswith("cmfgit: error: "), (case, proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, (case, proc.stderr)
    assert says.lower() in lines[0].lower(), (case, says, lines[0])
    assert snapshot(objects) == before, f"{case} wrote under .cmf/objects"
    assert not (cwd / "ran").exists(), f"{case} ran the command"


def test_outside_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (["log-run", "-s", "x", *RUN], ["log"], ["show", "abcd"], ["fsck"], ["init"], ["init", "--site", "a"]):
        assert_user_error(plain, args, code=1, says="not a git repository")
    assert list(plain.iterdir()) == []


def test_before_cmfgit_init(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", init_cmfgit=False)
    for args in (["log-run", "-s", "x", *RUN], ["log"], ["log", "--json"], ["show", "abcd"], ["fsck"]):
        assert_user_error(repo, args, code=1, says="cmfgit init")
    assert not (repo / ".cmf").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_log_run_refuses_bad_input_before_running(repo: Path) -> None:
    (repo / "data.csv").write_text("x\n")
    (repo / "loop").symlink_to("loop")
    (repo / "tree" / "sub").mkdir(parents=True)
    (repo / "tree" / "sub" / "up").symlink_to("..")
    (repo / "dangling").symlink_to("nowhere")
    (repo / "bad.yaml").write_text("lr: [0.1\n")
    (repo / "bad.json").write_text('{"lr": ')
    (repo / "list.yaml").write_text("- 1\n- 2\n")
    (repo / "dated.yaml").write_text("day: 2026-01-01\n")
    (repo / "ok.yaml").write_text("train:\n  lr: 1\n")
    os.mkfifo(repo / "fifo")
    bad_name = os.fsencode(repo) + b"/caf\xe9.csv"
    with open(bad_name, "wb") as fh:
        fh.write(b"latin-1 name\n")
    outside = repo.parent / "outside.txt"
    outside.write_text("not in the repo\n")

    cases: list[tuple[list[str], int, str]] = [
        (["-i", "missing.csv"], 1, "missing.csv: does not exist"),
        (["-i", "data.csv", "-i", "nope/x.csv"], 1, "does not exist"),
        (["-i", "dangling"], 1, "broken symbolic link"),
        (["-i", "loop"], 1, "symbolic link loop"),
        (["-i", "tree"], 1, "symbolic link loop"),
        (["-i", "fifo"], 1, "not a regular file"),
        (["-i", str(outside)], 1, "outside the repository"),
        (["-o", "../outside.txt"], 1, "outside the repository"),
        (["-i", ".git/config"], 1, "inside .git"),
        (["-i", "."], 1, "repository itself"),
        ([os.fsdecode(b"-i"), os.fsdecode(bad_name)], 1, "not valid UTF-8"),
        (["-p", "lr"], 2, "KEY=VALUE"),
        (["-p", "=1"], 2, "KEY=VALUE"),
        (["--bogus"], 2, "No such option: --bogus"),
        (["-x"], 2, "No such option: -x"),
        (["--params-file", "bad.yaml"], 1, "bad.yaml: not valid YAML"),
        (["--params-file", "bad.json"], 1, "bad.json: is not valid JSON"),
        (["--params-file", "list.yaml"], 2, "mapping"),
        (["--params-file", "dated.yaml"], 1, "unsupported value"),
        (["--params-file", "none.yaml"], 1, "none.yaml: does not exist"),
        (["--params-file", "ok.yaml:nokey"], 2, "no key 'nokey'"),
        (["--type", "model", "-i", "data.csv"], 2, "--type must follow"),
        (["-i", "data.csv", "--type", "Model"], 2, "lower-case"),
        (["-i", "data.csv", "--type", "a", "--type", "b"], 2, "twice"),
        (["-P"], 2, "Option '-P' requires an argument"),
        (["-o", ".cmf/objects"], 1, "cmfgit's own metadata"),
        (["-P", "two\nlines"], 2, "pipeline name 'two\\nlines' contains a control character"),
        (["-s", "tab\there"], 2, "stage name 'tab\\there' contains a control character"),
    ]
    for options, code, says in cases:
        assert_user_error(repo, ["log-run", "-s", "x", *options, *RUN], code=code, says=says)
    assert_user_error(repo, ["log-run", "-s", "x"], code=2, says="missing COMMAND")
    assert_user_error(repo, ["log-run", "-s", "x", "--"], code=2, says="missing COMMAND")
    assert_user_error(repo, ["log-run", "-s", "x", "--", "no-such-command-xyz"], code=127, says="command not found")
    assert Store(repo / ".cmf" / "objects").ids() == set()


def test_typer_commands_give_one_line_usage_errors(repo: Path) -> None:
    for args, says in (
        (["log", "--bogus"], "no such option: --bogus"),
        (["log", "-n", "abc"], "-n"),
        (["show"], "missing argument"),
        (["show", "--bogus", "abcd"], "no such option"),
        (["fsck", "extra"], "unexpected extra argument"),
        (["no-such-command"], "no such command"),
        (["init", "--site"], "requires an argument"),
    ):
        assert_user_error(repo, args, code=2, says=says)


def test_show_unknown_bad_and_ambiguous_prefixes(repo: Path) -> None:
    cmfgit(repo, "log-run", "-s", "x", "--", "true")
    store = Store(repo / ".cmf" / "objects")
    (rid,) = store.ids()
    missing = next(p for p in ("0000", "ffff", "1234") if not rid.startswith(p))
    assert_user_error(repo, ["show", missing], code=1, says=f"no record matches '{missing}'")
    assert_user_error(repo, ["show", "zz"], code=2, says="not a record id")
    assert_user_error(repo, ["show", "abc"], code=2, says="not a record id")  # too short to be a prefix

    # Two real records whose ids share their first 4 hex digits.
    _, record = store.get(rid)
    seen: dict[str, tuple[str, bytes]] = {}
    for i in range(100_000):
        record["uuid"] = f"{i:032x}"
        data, new_id = canonical.encode(record)
        other = seen.setdefault(new_id[:4], (new_id, data))
        if other[0] != new_id:
            break
    store.put_bytes(*other)
    store.put_bytes(new_id, data)
    assert_user_error(repo, ["show", new_id[:4]], code=1, says="is ambiguous")
    assert new_id[:12] in cmfgit(repo, "show", new_id[:4], check=False).stderr
    assert cmfgit(repo, "show", new_id[:40], "--json").returncode == 0


def test_malformed_config_is_a_one_line_error(repo: Path) -> None:
    (repo / ".cmf" / "config.yaml").write_text("schema: cmfgit/config/1\ngc: [\n")
    assert_user_error(repo, ["log-run", "-s", "x", *RUN], code=1, says="config.yaml")
    (repo / ".cmf" / "config.yaml").write_text("schema: cmfgit/config/99\n")
    assert_user_error(repo, ["log-run", "-s", "x", *RUN], code=1, says="unknown config schema")


def test_api_errors_are_cmfgit_errors(tmp_path: Path, repo: Path) -> None:
    """The Python API raises the same one-line errors and writes nothing."""
    script = (
        "import cmfgit, sys\n"
        "from cmfgit.errors import CmfgitError\n"
        "try:\n"
        "    with cmfgit.run(stage='s', repo=sys.argv[1]) as run:\n"
        "        run.log_input(sys.argv[2])\n"
        "except CmfgitError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), "x"], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert proc.stdout.startswith("NotARepoError not a git repository")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(repo), str(repo / "nope.csv")], capture_output=True, text=True, cwd=repo
    )
    # The error inside the block is recorded as a failed run, then re-raised.
    assert proc.stdout.startswith("PathError"), proc.stdout + proc.stderr
    assert "does not exist" in proc.stdout


def test_a_failed_git_command_names_git_s_reason(repo: Path) -> None:
    """git's first 'fatal:' line, not its closing advice ("and the repository exists.")."""
    git(repo, "remote", "add", "origin", str(repo.parent / "no-such-remote.git"))
    proc = cmfgit(repo, "push", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "does not appear to be a git repository" in proc.stderr
