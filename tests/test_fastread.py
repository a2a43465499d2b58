"""The typer-free path of the read commands: it reads command lines as click does,
gives the same output as the typer commands, and leaves everything else to typer."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit
from hypothesis import given, settings
from hypothesis import strategies as st
from qhelp import art, execution, h, put, ts

from cmfgit import fastread


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["log"], ("log", {})),
        (
            ["log", "-P", "wine", "--stage=train", "-n5", "--where", "x == 1", "--sort", "-metrics.acc", "--json"],
            ("log", {"pipeline": "wine", "stage": "train", "number": 5, "where": "x == 1", "sort": "-metrics.acc",
                     "as_json": True}),
        ),
        (["log", "-n", "-1"], ("log", {"number": -1})),
        (["log", "--since", "7d"], ("log", {"since": "7d"})),  # a value may start with '-'; log says why it is bad
        (["log", "-n", "1", "-n", "2"], ("log", {"number": 2})),  # the last one wins, as in click
        (["log", "--ref", "main", "--all-branches", "--global", "--remote", "up"],
         ("log", {"ref": "main", "all_branches": True, "global_": True, "remote": "up"})),
        (["show", "3f2a", "--json"], ("show", {"record_id": "3f2a", "as_json": True})),
        (["show", "--", "-3f2a"], ("show", {"record_id": "-3f2a"})),
        (["log", "--help"], None),
        (["log", "-h"], None),
        (["log", "--json=yes"], None),
        (["log", "-n", "many"], None),
        (["log", "-n"], None),
        (["log", "--bogus"], None),
        (["log", "extra"], None),
        (["show"], None),
        (["show", "a", "b"], None),
        (["show", "3f2a", "-P", "x"], None),
        (["lineage", "m.pkl"], ("lineage", {"target": "m.pkl"})),
        (["lineage", "--down", "m.pkl", "--depth=2", "-f", "dot"],
         ("lineage", {"down": True, "target": "m.pkl", "depth": 2, "fmt": "dot"})),
        (["lineage", "m.pkl", "--depth", "-1"], None),
        (["lineage"], None),
        (["lineage", "m.pkl", "--json", "-n", "2"], None),
        (["diff", "a1b2", "c3d4", "--json"], ("diff", {"a": "a1b2", "b": "c3d4", "as_json": True})),
        (["diff", "a1b2"], None),
        (["artifacts", "-t", "model", "-n", "3", "--pipeline=p"],
         ("artifacts", {"type_": "model", "number": 3, "pipeline": "p"})),
        (["artifacts", "-n", "-1"], None),  # typer's min=0 words it
        (["pipelines", "--global"], ("pipelines", {"global_": True})),
        (["pipelines", "x"], None),
        (["tag", "x"], None),
        (["pull"], ("pull", {})),
        (["pull", "up", "-P", "a", "--pipeline=b", "-Pc", "--since", "7d", "-a", "m.pkl", "--with-lineage"],
         ("pull", {"remote": "up", "pipeline": ["a", "b", "c"], "since": "7d", "artifact": ["m.pkl"],
                   "with_lineage": True})),
        (["pull", "--with-data"], None),  # the data layer: typer's command
        (["pull", "a", "b"], None),
        (["pull", "-P"], None),
        (["pull", "--help"], None),
    ],
)  # fmt: skip
def test_parse(argv: list[str], expected: object) -> None:
    assert fastread.parse(argv) == expected


def both(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    fast = cmfgit(root, *args, check=False)
    slow = cmfgit(root, *args, check=False, env={"CMFGIT_NO_FASTPATH": "1"})
    return fast, slow


def test_same_output_as_the_typer_commands(repo: Path) -> None:
    a, b, _c = put(
        repo,
        execution("prep", [art("raw")], [art("clean")], params={"k": 1}, metrics={"rows": 10}, started_at=ts(1)),
        execution("train", [art("clean")], [art("model", "model")], params={"lr": 0.1}, metrics={"acc": 0.9},
                  started_at=ts(2)),
        execution("train", [art("clean")], [art("model2", "model")], params={"lr": 0.2}, metrics={"acc": 0.8},
                  pipeline="other", started_at=ts(3)),
    )  # fmt: skip
    cmfgit(repo, "tag", b[:8], "status=production")
    cases = [
        ["log"],
        ["log", "--json"],
        ["log", "-n", "1"],
        ["log", "-P", "p", "-s", "train", "--json"],
        ["log", "--where", "params.lr >= 0.1 and metrics.acc > 0.5", "--sort", "-metrics.acc"],
        ["log", "--where", 'tags.status == "production"', "--json"],
        ["log", "--where", "params.lrr > 1"],  # unknown key: the same error
        ["log", "--where", "params.lr >="],  # syntax error with a caret
        ["log", "-n", "-1"],
        ["log", "--since", "2026-01-01T00:00:02Z", "--json"],
        ["log", "--since", "yesterday"],  # the same error
        ["log", "--sort", "metrics.nothere"],  # unknown key: the same error
        ["log", "--ref", "HEAD", "--all-branches"],  # two scopes
        ["log", "-P", "nothing"],
        ["show", a[:8]],
        ["show", b, "--json"],
        ["show", "ffffffff"],
        ["show", "xyz"],
        ["log", "--bogus"],  # typer in both runs
        ["lineage", h("model")],
        ["lineage", h("clean"), "--down", "--json"],
        ["lineage", a[:10], "--both", "--format", "mermaid", "--depth", "1"],
        ["lineage", h("model"), "-f", "dot", "--global"],  # no global branch: the same error
        ["lineage", h("model"), "--up", "--down"],
        ["lineage", h("model"), "--format", "svg"],
        ["lineage", "no/such/file"],
        ["diff", a[:8], b[:8]],
        ["diff", a[:8], b, "--json"],
        ["diff", a[:8], "ffffffff"],
        ["artifacts"],
        ["artifacts", "--json", "-t", "model"],
        ["artifacts", "-P", "other", "-n", "1"],
        ["artifacts", "-n", "-1"],
        ["pipelines"],
        ["pipelines", "--json"],
        ["pipelines", "--ref", "no-such-ref"],
    ]
    for args in cases:
        fast, slow = both(repo, *args)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), args
        assert "Traceback" not in fast.stderr
    assert "status=production" in cmfgit(repo, "log").stdout


def test_read_commands_do_not_import_typer(repo: Path) -> None:
    put(repo, execution("prep", [art("raw")], [art("clean")], started_at=ts(1)))
    for args in (
        ["log", "-n", "5"],
        ["show", "--json", "--", "0000"],
        ["lineage", h("clean")],
        ["artifacts"],
        ["pipelines", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "cmfgit", *args], cwd=repo, capture_output=True, text=True
        )
        imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
        assert "cmfgit" in imported and not imported & {"typer", "click", "pydantic"}, args


_TOKENS = [
    "-P", "--pipeline", "-s", "--stage", "-n", "--max-count", "-w", "--where", "--sort", "--json", "--ref",
    "--all-branches", "--global", "--remote", "--since", "--depth", "--format", "-f", "--up", "--down", "--both", "-t",
    "--type", "--", "-", "5", "-1", "0", "x", "a1b2", "-metrics.acc", "--pipeline=p", "--depth=2", "-n3", "-Pwine",
    "--json=1", "-h", "--bogus", "-x", "",
]  # fmt: skip


@given(
    command=st.sampled_from(["log", "show", "lineage", "diff", "artifacts", "pipelines"]),
    words=st.lists(st.sampled_from(_TOKENS), max_size=7),
)
@settings(max_examples=400, deadline=None)
def test_parse_agrees_with_click(command: str, words: list[str]) -> None:
    """Whatever fastread accepts, click reads the same way; what click refuses,
    fastread leaves to it."""
    parsed = fastread.parse([command, *words])
    sub = _click().commands[command]
    try:
        ctx = sub.make_context(command, list(words))
    except Exception:  # click's usage errors (and --help's exit)
        assert parsed is None, (command, words)
        return
    if parsed is None:
        return  # left to typer: always allowed
    assert parsed[0] == command
    for key, value in ctx.params.items():
        assert parsed[1].get(key, sub_default(sub, key)) == value, (command, words, key)


@functools.lru_cache(maxsize=1)
def _click() -> Any:
    from cmfgit.cli import build_command

    return build_command()


def sub_default(sub: object, key: str) -> object:
    return next(p.default for p in sub.params if p.name == key)  # type: ignore[attr-defined]
