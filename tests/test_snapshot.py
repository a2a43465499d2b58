"""The dirty-tree snapshot (``git.tree``): what it holds, what it never holds, and its bounds.

Real git, the real CLI, a real bare central repository over file://.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import cmfgit, git
from sites import clone_site, seed_remote

from cmfgit import canonical
from cmfgit.redact import Redactor, secret_content, secret_path

SECRET = "sk-live-0123456789abcdefghijklmnop"  # an OpenAI-style key: a redaction value rule
NOTES = "the db password is correct-horse-battery"  # no token pattern: only the file's name gives it away

# Files a user keeps next to the code and never means to publish.
SECRET_FILES = {
    "params.yaml": f"lr: 0.1\napi_key: {SECRET}\n",  # content: a secret key with a value
    "notes-credentials.txt": NOTES + "\n",  # name: *credential*
    ".env": "DATABASE_URL=postgres://me:pw-in-env-file@db/x\n",
    "deploy/server.pem": "not really a certificate, but named like one\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "settings.json": '{"user": "me", "password": "hunter2-in-json"}\n',
    "conf/remote.cfg": "url = https://me:pw-in-url@example.com/repo.git\n",
    "push.sh": "curl -H 'Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123456789' x\n",
}
LEAKS = [SECRET, NOTES, "pw-in-env-file", "b3BlbnNzaC1rZXktdjEAAAAA", "hunter2-in-json", "pw-in-url", "ghp_abcdef"]


def log_run(repo: Path, *args: str) -> dict:
    proc = cmfgit(repo, "log-run", "-s", "train", *args, "--", "true")
    match = re.search(r"recorded ([0-9a-f]+)", proc.stderr)
    assert match, proc.stderr
    short = match.group(1)
    return json.loads(cmfgit(repo, "show", short, "--json").stdout)["git"]


def tree_files(repo: Path, tree: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "-z", "--name-only", tree).split("\0")) - {""}


def set_snapshot_config(repo: Path, **values: object) -> None:
    """Set keys of the ``snapshot`` section of ``.cmf/config.yaml``."""
    path = repo / ".cmf/config.yaml"
    doc = canonical.load(path.read_bytes())
    doc.setdefault("snapshot", {}).update(values)
    path.write_bytes(canonical.dump(doc))


def enable_untracked(repo: Path) -> None:
    git(repo, "config", "cmfgit.snapshot.untracked", "true")


def all_object_bytes(repo: Path) -> bytes:
    """Every object in ``repo``'s object database, concatenated."""
    out = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch", "--unordered"], cwd=repo, capture_output=True, check=True
    )
    return out.stdout


def test_secrets_in_untracked_files_never_reach_the_central_repository(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab", hooks=True)
    enable_untracked(site)  # even with untracked files captured, secrets stay home
    for rel, text in SECRET_FILES.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    (site / "model.py").write_text("def fit():\n    return 1\n")  # new code: worth keeping
    (site / "tokenizer.py").write_text("def tokens(s):\n    return s.split()\n")  # code, not a token

    state = log_run(site, "--params-file", "params.yaml")
    assert state["dirty"] is True
    files = tree_files(site, state["tree"])
    assert {"model.py", "tokenizer.py", "README.md"} <= files
    assert not files & set(SECRET_FILES)
    assert state["untracked_skipped"] == len(SECRET_FILES)

    cmfgit(site, "push")
    assert git(bare, "for-each-ref", f"refs/cmf/keep/{state['tree']}").strip()  # the snapshot was pushed

    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", url, str(fresh))
    git(fresh, "fetch", "-q", "origin", "refs/cmf/*:refs/cmf/*")
    assert tree_files(fresh, state["tree"]) == files  # the code version resolves in the fresh clone
    everything = all_object_bytes(fresh)
    assert b"def fit()" in everything
    for leak in LEAKS:
        assert leak.encode() not in everything, leak
    central = all_object_bytes(bare)
    for leak in LEAKS:
        assert leak.encode() not in central, leak


def test_by_default_untracked_files_are_counted_not_captured(repo: Path) -> None:
    (repo / "README.md").write_text("edited\n")  # a tracked change: always in the snapshot
    (repo / "new_module.py").write_text("x = 1\n")
    (repo / "data").mkdir()
    for i in range(3):
        (repo / "data" / f"part{i}.csv").write_text(f"{i}\n")
    state = log_run(repo)
    assert state["dirty"] is True
    assert tree_files(repo, state["tree"]) == {f for f in tree_files(repo, "HEAD") if not f.startswith(".cmf/")}
    assert git(repo, "cat-file", "-p", f"{state['tree']}:README.md") == "edited\n"
    assert state["untracked_skipped"] == 4


def test_a_clean_or_fully_captured_run_has_no_skipped_count(repo: Path) -> None:
    assert "untracked_skipped" not in log_run(repo)  # clean
    (repo / "README.md").write_text("edited\n")
    assert "untracked_skipped" not in log_run(repo)  # dirty, nothing untracked
    enable_untracked(repo)
    (repo / "new_module.py").write_text("x = 1\n")
    state = log_run(repo)
    assert "untracked_skipped" not in state
    assert "new_module.py" in tree_files(repo, state["tree"])


def test_settings_turn_untracked_capture_on_and_off(repo: Path) -> None:
    (repo / "new_module.py").write_text("x = 1\n")
    set_snapshot_config(repo, untracked=True)
    state = log_run(repo)
    assert "new_module.py" in tree_files(repo, state["tree"])
    # This clone says no, whatever the shared config says.
    git(repo, "config", "cmfgit.snapshot.untracked", "false")
    state = log_run(repo)
    assert "new_module.py" not in tree_files(repo, state["tree"])
    assert state["untracked_skipped"] == 1


def test_count_bound(repo: Path) -> None:
    enable_untracked(repo)
    (repo / "many").mkdir()
    for i in range(1005):
        (repo / "many" / f"f{i:04}.py").write_text(f"n = {i}\n")
    state = log_run(repo)
    captured = {f for f in tree_files(repo, state["tree"]) if f.startswith("many/")}
    assert len(captured) == 1000  # the default bound
    assert state["untracked_skipped"] == 5
    git(repo, "config", "cmfgit.snapshot.maxFiles", "10")
    state = log_run(repo)
    assert len({f for f in tree_files(repo, state["tree"]) if f.startswith("many/")}) == 10
    assert state["untracked_skipped"] == 995


def test_size_bounds(repo: Path) -> None:
    enable_untracked(repo)
    kib = 1024
    (repo / "small.bin").write_bytes(b"s" * (256 * kib))  # exactly the per-file bound: kept
    (repo / "big.bin").write_bytes(b"b" * (256 * kib + 1))  # one byte more: left out
    state = log_run(repo)
    files = tree_files(repo, state["tree"])
    assert "small.bin" in files and "big.bin" not in files
    assert state["untracked_skipped"] == 1

    (repo / "small.bin").unlink()
    (repo / "big.bin").unlink()
    (repo / "chunks").mkdir()
    for i in range(40):  # 40 x 250 KiB = 10,000 KiB > 8 MiB in all
        (repo / "chunks" / f"c{i:02}.dat").write_bytes(f"{i}\n".encode() + b"x" * (250 * kib - 3))
    state = log_run(repo)
    captured = {f for f in tree_files(repo, state["tree"]) if f.startswith("chunks/")}
    assert len(captured) == 32  # 32 x 250 KiB fits in 8 MiB, 33 does not
    assert state["untracked_skipped"] == 8

    set_snapshot_config(repo, max_file_size=1000, max_total_size=2_000_000)
    state = log_run(repo)
    assert not {f for f in tree_files(repo, state["tree"]) if f.startswith("chunks/")}
    assert state["untracked_skipped"] == 40
    git(repo, "config", "cmfgit.snapshot.maxFileSize", "300k")  # git's suffixes; the clone wins
    state = log_run(repo)
    assert len({f for f in tree_files(repo, state["tree"]) if f.startswith("chunks/")}) == 7  # 2,000,000 bytes


def test_bad_settings_are_one_line_errors(repo: Path) -> None:
    git(repo, "config", "cmfgit.snapshot.maxFiles", "lots")
    proc = cmfgit(repo, "log-run", "-s", "s", "--", "true", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "cmfgit: error: git config cmfgit.snapshot.maxfiles: 'lots' is not a number of files"
    ]
    git(repo, "config", "--unset", "cmfgit.snapshot.maxFiles")
    set_snapshot_config(repo, untracked="maybe")
    proc = cmfgit(repo, "log-run", "-s", "s", "--", "true", check=False)
    assert proc.returncode == 1
    assert "'snapshot.untracked' must be a bool" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_keep_refs_stay_home_when_pushing_them_is_off(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab", hooks=True)
    (site / "README.md").write_text("edited, not committed\n")
    state = log_run(site)
    git(site, "config", "cmfgit.snapshot.push", "false")
    cmfgit(site, "push")
    assert git(site, "for-each-ref", f"refs/cmf/keep/{state['tree']}").strip()  # kept here
    assert git(bare, "for-each-ref", "refs/cmf/keep/").strip() == ""  # not there
    assert git(bare, "cat-file", "-t", state["tree"], check=False).strip() != "tree"


def test_twenty_thousand_untracked_files_do_not_blow_up(repo: Path) -> None:
    venv = repo / "venv" / "lib"
    venv.mkdir(parents=True)
    for i in range(20_000):
        (venv / f"m{i:05}.py").touch()
    (repo / "README.md").write_text("edited\n")
    state = log_run(repo)  # the default: untracked files are not captured
    assert not {f for f in tree_files(repo, state["tree"]) if f.startswith("venv/")}
    assert state["untracked_skipped"] == 20_000
    enable_untracked(repo)
    state = log_run(repo)
    assert len({f for f in tree_files(repo, state["tree"]) if f.startswith("venv/")}) == 1000
    assert state["untracked_skipped"] == 19_000


def test_a_secret_added_to_a_tracked_file_stays_out(repo: Path) -> None:
    (repo / "db.yaml").write_text("host: db\n")
    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", "db.yaml", "train.py")
    git(repo, "commit", "-qm", "code")
    (repo / "db.yaml").write_text("host: db\npassword: hunter2-tracked\n")  # edited, not staged
    (repo / "train.py").write_text("print(2)\n")
    state = log_run(repo)
    assert git(repo, "cat-file", "-p", f"{state['tree']}:db.yaml") == "host: db\n"  # as staged
    assert git(repo, "cat-file", "-p", f"{state['tree']}:train.py") == "print(2)\n"  # as it is
    assert state["tracked_withheld"] == 1 and "untracked_skipped" not in state
    git(repo, "add", "db.yaml")  # staged: the user means to commit it, and the snapshot follows
    state = log_run(repo)
    assert "hunter2-tracked" in git(repo, "cat-file", "-p", f"{state['tree']}:db.yaml")
    assert "tracked_withheld" not in state


def test_file_name_rules() -> None:
    red = Redactor()
    secret = [
        ".env", ".env.local", "prod.env", ".netrc", "deploy/id_rsa", "id_ed25519.pub", "certs/server.PEM",
        "tls.key", "notes-credentials.txt", "secrets/config.yaml", "api_keys.json", "my-password.txt",
        "aws_secret_access_key", "tokens.txt", "conf/.pgpass", "vault.kdbx", "prod.tfvars",
    ]  # fmt: skip
    code = ["tokenizer.py", "keystone/app.py", "primary_keys.py", "model.py", "data/train.csv", "envs/base.yaml"]
    assert [p for p in secret if not secret_path(p, red)] == []
    assert [p for p in code if secret_path(p, red)] == []
    assert secret_path("internal/plan.md", Redactor(extra_keys=["^internal$"]))  # redact.keys apply too


def test_content_rules() -> None:
    red = Redactor(extra_values=[r"corp-[0-9]{6}"])
    flagged = [
        b"api_key: abc123\n",
        b"PASSWORD=hunter2\n",
        b'{"token": "t0k3n-value"}',
        b"export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n",
        b"url: https://me:pw@example.com/x\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
        b"key = ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
        b"id: corp-123456\n",  # redact.values
        b"\x00\x01binary then password: s3cr3t\n",
    ]
    clean = [
        b"lr: 0.1\nepochs: 3\n",
        b"password: ${DB_PASSWORD}\n",
        b"token: null\n",
        b"api_key:\n",
        b"pad_token: '<pad>'\n",
    ]
    assert [d for d in flagged if not secret_content(d, red)] == []
    assert [d for d in clean if secret_content(d, red)] == []
    # In source code only a quoted literal is a value: the rest are references.
    assert not secret_content(b"password = args.password\ntoken = tokens[i]\n", red, "train.py")
    assert secret_content(b'password = "hunter2"\n', red, "train.py")
    assert secret_content(b"password = hunter2\n", red, "app.ini")


def test_a_renamed_file_whose_old_name_looks_like_an_untracked_entry(repo: Path) -> None:
    (repo / "? odd name.py").write_text("x = 1\n" * 20)
    git(repo, "add", "-A", "--", ".", ":(exclude).cmf")
    git(repo, "commit", "-qm", "odd")
    git(repo, "mv", "? odd name.py", "renamed.py")  # status -z: '2 R. ... renamed.py\0? odd name.py'
    (repo / "real-untracked.txt").write_text("u\n")
    state = log_run(repo)
    assert "renamed.py" in tree_files(repo, state["tree"])
    assert state["untracked_skipped"] == 1


def test_the_python_api_takes_the_same_snapshot(repo: Path) -> None:
    import cmfgit as api

    enable_untracked(repo)
    (repo / ".env").write_text("TOKEN=abcdef123456\n")
    (repo / "features.py").write_text("def f():\n    return 2\n")
    with api.run(pipeline="p", stage="s", repo=repo, command=["train"]) as run:
        pass
    state = json.loads(cmfgit(repo, "show", run.id, "--json").stdout)["git"]
    assert "features.py" in tree_files(repo, state["tree"]) and ".env" not in tree_files(repo, state["tree"])
    assert state["untracked_skipped"] == 1


def test_only_hinted_lines_are_scanned_but_every_rule_still_applies() -> None:
    red = Redactor()
    filler = b"".join(b"%d,0.5,label_%d\n" % (i, i % 7) for i in range(20_000))
    assert not secret_content(filler, red, "data.csv")
    for needle in (b"api_key: abc123", b"x = https://u:pw@h/x", b"AKIAABCDEFGHIJKLMNOP", b"Token=abcdefgh"):
        assert secret_content(filler + needle + b"\n" + filler, red, "data.csv"), needle
    assert secret_content(filler + b"-----BEGIN PRIVATE KEY-----\n", red, "k.txt")
