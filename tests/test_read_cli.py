"""The read commands end to end: log/show/artifacts/pipelines/diff/lineage in every scope."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cmfgit, git
from qhelp import art, execution, h, put, ts


def commit(root: Path, message: str) -> None:
    git(root, "add", ".cmf")
    git(root, "commit", "-q", "-m", message)


def test_read_commands_in_every_scope(repo: Path, bare_repo: Path) -> None:
    (a,) = put(
        repo,
        execution(
            "prep",
            [art("raw")],
            [art("clean")],
            pipeline="wine",
            params={"lr": 0.1},
            metrics={"acc": 0.8},
            started_at=ts(1),
        ),
    )
    commit(repo, "a")
    git(repo, "checkout", "-q", "-b", "side")
    (b,) = put(
        repo,
        execution(
            "train",
            [art("clean")],
            [art("model", "model")],
            pipeline="wine",
            params={"lr": 0.01},
            metrics={"acc": 0.9},
            started_at=ts(2),
        ),
    )
    commit(repo, "b")
    git(repo, "checkout", "-q", "main")
    (c,) = put(
        repo,
        execution(
            "train",
            [art("clean")],
            [art("model2", "model")],
            pipeline="wine",
            params={"lr": 0.5},
            metrics={"acc": 0.7},
            started_at=ts(3),
        ),
    )  # untracked

    def ids(*args: str) -> list[str]:
        return [r["id"] for r in json.loads(cmfgit(repo, "log", "--json", *args).stdout)]

    assert ids() == [c, a]
    assert ids("--ref", "side") == [b, a]
    assert ids("--ref", "main") == [a]  # committed records only
    assert ids("--all-branches") == [c, b, a]
    assert ids("--all-branches", "--where", "metrics.acc >= 0.8", "--sort", "-metrics.acc") == [b, a]
    assert ids("--all-branches", "-n", "1", "--sort", "params.lr") == [b]
    assert ids("--pipeline", "wine", "--stage", "train") == [c]
    assert json.loads(cmfgit(repo, "show", b[:10], "--json", "--ref", "side").stdout)["id"] == b
    missing = cmfgit(repo, "show", b[:10], check=False)
    assert missing.returncode == 1 and f"no record matches '{b[:10]}'" in missing.stderr

    # The global metadata branch, as the sync engineer's push leaves it on the remote.
    gone = cmfgit(repo, "log", "--global", check=False)
    assert gone.returncode == 1 and "cmfgit global fetch origin" in gone.stderr and "cmf/global" in gone.stderr
    git(repo, "remote", "add", "origin", str(bare_repo))
    git(repo, "push", "-q", "origin", "side:refs/heads/cmf/global")
    git(repo, "fetch", "-q", "origin")
    assert ids("--global") == [b, a]
    assert json.loads(cmfgit(repo, "pipelines", "--json", "--global").stdout)[0]["executions"] == 2
    lineage = json.loads(cmfgit(repo, "lineage", h("model"), "--json", "--global").stdout)
    assert {n["id"] for n in lineage["nodes"] if n["kind"] == "execution"} == {a, b}

    both = cmfgit(repo, "log", "--ref", "side", "--global", check=False)
    assert both.returncode == 2 and "choose one scope" in both.stderr
    bad_ref = cmfgit(repo, "log", "--ref", "nope", check=False)
    assert bad_ref.returncode == 1 and "unknown revision 'nope'" in bad_ref.stderr


def test_human_output(repo: Path) -> None:
    empty = cmfgit(repo, "log")
    assert "no executions recorded yet" in empty.stdout
    assert "no artifacts recorded" in cmfgit(repo, "artifacts").stdout
    a, b = put(
        repo,
        execution("prep", [art("raw")], [art("clean")], pipeline="wine", params={"lr": 0.1}, started_at=ts(1)),
        execution(
            "train",
            [art("clean")],
            [art("model", "model", "model.pkl")],
            pipeline="wine",
            params={"lr": 0.01},
            metrics={"acc": 0.9},
            started_at=ts(2),
            exit_code=3,
        ),
    )
    log = cmfgit(repo, "log").stdout
    assert a[:12] in log and b[:12] in log and "wine/train" in log
    assert "no executions match" in cmfgit(repo, "log", "--where", "params.lr > 5").stdout
    pipelines = cmfgit(repo, "pipelines").stdout
    assert "wine" in pipelines and "train" in pipelines and "prep" in pipelines
    artifacts = cmfgit(repo, "artifacts", "--type", "model").stdout
    assert h("model")[:19] in artifacts and "model.pkl" in artifacts
    diff = cmfgit(repo, "diff", a[:8], b[:8]).stdout
    assert "params.lr" in diff and "0.1" in diff and "0.01" in diff and "metrics.acc" in diff
    tree = cmfgit(repo, "lineage", "model.pkl").stdout
    assert "wine/train" in tree and "wine/prep" in tree and "data/raw" in tree
    bad = cmfgit(repo, "diff", a[:8], "ffff", check=False)
    assert bad.returncode == 1 and "no record matches 'ffff'" in bad.stderr


def test_log_warns_about_records_it_cannot_read(repo: Path) -> None:
    good, bad = put(repo, execution("a", started_at=ts(1)), execution("b", started_at=ts(2)))
    path = repo / ".cmf/objects" / bad[:2] / f"{bad[2:]}.yaml"
    path.write_bytes(path.read_bytes().replace(b"stage: b", b"stage: B"))  # tampered: no longer its id
    proc = cmfgit(repo, "log", "--json")
    assert [o["id"] for o in json.loads(proc.stdout)] == [good]
    assert "1 record(s) could not be read and are left out; run 'cmfgit fsck'" in proc.stderr
    shown = cmfgit(repo, "show", bad[:8], check=False)
    assert shown.returncode == 1 and "could not be read; run 'cmfgit fsck'" in shown.stderr
    path.unlink()
    clean = cmfgit(repo, "log", "--json")
    assert clean.stderr == "" and [o["id"] for o in json.loads(clean.stdout)] == [good]


def test_diff_shows_an_output_that_was_not_created(repo: Path) -> None:
    (repo / "model.pkl").write_text("m")
    cmfgit(repo, "log-run", "-s", "train", "-o", "model.pkl", "--", "true")
    cmfgit(repo, "log-run", "-s", "train", "-o", "other.pkl", "--", "true")  # never created
    new, old = (o["id"] for o in json.loads(cmfgit(repo, "log", "--json").stdout))
    rows = {line.split()[1]: line.split()[2:] for line in cmfgit(repo, "diff", old, new).stdout.splitlines()
            if line.startswith("output ")}  # fmt: skip
    assert rows["other.pkl"] == ["-", "(missing)"]
    assert rows["model.pkl"][0].startswith("blake3:") and rows["model.pkl"][1] == "-"


def test_every_read_command_shows_what_verifies_and_warns_in_every_scope(repo: Path) -> None:
    from cmfgit import canonical, pack

    records = [execution("train", started_at=ts(i), params={"i": i}) for i in range(5)]
    encoded = dict(reversed(canonical.encode(r)) for r in records)
    path = repo / ".cmf/objects/pack/site-a/2026-01.yaml"
    path.parent.mkdir(parents=True)
    data = pack.serialize(encoded)
    victim = sorted(encoded)[1]
    at = data.index(victim.encode()) + len(victim) + 1
    path.write_bytes(data[:at] + b"<<<<<<< HEAD\n" + data[at:])  # the victim's bytes no longer match
    git(repo, "add", ".cmf")
    git(repo, "commit", "-q", "--no-verify", "-m", "damaged")
    note = "cmfgit: warning: 1 record(s) could not be read and are left out; run 'cmfgit fsck'\n"
    for scope in ((), ("--ref", "main"), ("--all-branches",)):
        proc = cmfgit(repo, "log", "--json", *scope)
        assert {o["id"] for o in json.loads(proc.stdout)} == set(encoded) - {victim}
        assert proc.stderr == note, scope
        for args in (("pipelines",), ("artifacts",), ("show", sorted(encoded)[0][:10])):
            assert cmfgit(repo, *args, *scope).stderr == note, (args, scope)
    # Commands that use the Python API (CmfQuery warns with a UserWarning) say it in one line too.
    assert cmfgit(repo, "tag", sorted(encoded)[0][:10]).stderr == note
