"""`cmfgit doctor`: the state of a clone, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import recgen
from conftest import cmfgit, git


def checks(path: Path, *args: str) -> tuple[int, dict[str, dict[str, str]], dict[str, object]]:
    proc = cmfgit(path, "doctor", "--json", *args, check=False)
    report = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in report["checks"]}, report


def test_doctor_reports_a_fresh_clone_without_fixing_it(repo: Path, bare_repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_repo))
    git(repo, "push", "-q", "-u", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare_repo), str(clone))

    code, found, _ = checks(clone)
    assert code == 1
    assert found["merge driver"]["status"] == "error" and found["merge driver"]["fix"] == "cmfgit init"
    assert found["hooks"]["status"] == "warn"
    assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""  # doctor only reads
    text = cmfgit(clone, "doctor", check=False).stdout
    assert "ERROR merge driver" in text and "-> cmfgit init" in text

    cmfgit(clone, "init")
    code, found, report = checks(clone)
    assert code == 0 and report["ok"] is True
    assert {found[n]["status"] for n in ("merge driver", "attributes", "hooks", "pending", "remote")} == {"ok"}
    assert report["remote"] == {"name": "origin", "url": str(bare_repo)}
    assert found["global view"]["status"] == "warn"  # never fetched


def test_doctor_counts_records_and_compares_with_the_global_view(repo: Path, bare_repo: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_repo))
    recgen.write(repo, *range(4))
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "records")
    cmfgit(repo, "gc")
    recgen.write(repo, 10)
    _, found, report = checks(repo)
    assert report["records"] == {"loose": 1, "packed": 4, "packs": 1, "gc_threshold": 1000}
    assert report["pending_paths"] == 6  # 4 loose files removed, the pack, one new record
    assert "6 path(s) under .cmf not committed" in found["pending"]["detail"]

    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "packed")
    # Stand-in for the global branch that 'cmfgit push' maintains: the same records.
    git(repo, "push", "-q", "origin", "main", "HEAD:refs/heads/cmf/global")
    git(repo, "fetch", "-q", "origin")
    _, found, report = checks(repo)
    assert found["global view"]["status"] == "ok"
    assert report["global"] == {"ref": "refs/remotes/origin/cmf/global", "fetched": True, "missing": 0}

    recgen.write(repo, 11, 12)
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "two more")
    _, found, report = checks(repo)
    assert found["global view"]["status"] == "warn" and found["global view"]["fix"] == "cmfgit push"
    assert "2 committed record(s) not in refs/remotes/origin/cmf/global" in found["global view"]["detail"]


def test_doctor_fsck_option_reports_bad_records(repo: Path) -> None:
    (rid,) = recgen.write(repo, 1)
    loose = repo / ".cmf/objects" / rid[:2] / f"{rid[2:]}.yaml"
    loose.write_bytes(loose.read_bytes() + b"# edited\n")
    code, found, report = checks(repo, "--fsck")
    assert code == 1 and found["fsck"]["status"] == "error"
    assert any(rid[2:] in p for p in report["fsck"]["problems"])  # type: ignore[index, union-attr]
    code, found, _ = checks(repo)
    assert code == 0 and "fsck" not in found


def test_doctor_never_prints_the_credentials_of_a_remote_url(repo: Path) -> None:
    token = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    git(repo, "remote", "add", "origin", f"https://{token}@github.com/team/repo.git")
    git(repo, "remote", "add", "mirror", "https://bob:hunter2-long-pw@git.example.com/team/repo.git")
    for remote, shown in (
        ("origin", "https://REDACTED@github.com/team/repo.git"),
        ("mirror", "https://bob:REDACTED@git.example.com/team/repo.git"),
    ):
        proc = cmfgit(repo, "doctor", "--json", "--remote", remote, check=False)
        text = cmfgit(repo, "doctor", "--remote", remote, check=False)
        for out in (proc.stdout + proc.stderr, text.stdout + text.stderr):
            assert token not in out and "hunter2-long-pw" not in out
        report = json.loads(proc.stdout)
        assert report["remote"] == {"name": remote, "url": shown}
        assert f"{remote} ({shown})" in text.stdout
