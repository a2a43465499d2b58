"""Secrets never reach a record: params, argv, environment and remote URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cmfgit, git

from cmfgit import canonical
from cmfgit.redact import REDACTED, Redactor, is_secret_key

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
ENV_TOKEN = "env-token-value-9f8e7d"
DB_PASSWORD = "db-pass-Xyz123"
URL_PASSWORD = "url-pass-Qw3rty"
ARGV_PASSWORD = "argv-pass-hunter2"
PARAM_SECRET = "param-secret-4242"
API_KEY = "api-key-77aa88bb"
NESTED_PASSWORD = "nested-pass-5150"
REMOTE_PASSWORD = "remote-pass-0xCAFE"
API_SECRET = "python-api-secret-31337"

SECRETS = [
    AWS_SECRET,
    GITHUB_TOKEN,
    ENV_TOKEN,
    DB_PASSWORD,
    URL_PASSWORD,
    ARGV_PASSWORD,
    PARAM_SECRET,
    API_KEY,
    NESTED_PASSWORD,
    REMOTE_PASSWORD,
    API_SECRET,
]


def all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.mark.parametrize(
    "key, secret",
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("aws_access_key_id", True),
        ("GITHUB_TOKEN", True),
        ("apiKey", True),
        ("api-key", True),
        ("x_auth_token", True),
        ("client_secret", True),
        ("privateKey", True),
        ("MY_SECRET_THING", True),
        ("tokenizer", False),
        ("max_tokens", False),
        ("PWD", False),
        ("OLDPWD", False),
        ("HOME", False),
        ("keyboard", False),
        ("monkey", False),
        ("secretary_count", False),
        ("lr", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redactor_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_TOKEN", ENV_TOKEN)
    red = Redactor()
    assert red.text(f"https://bob:{URL_PASSWORD}@example.com/x") == f"https://bob:{REDACTED}@example.com/x"
    assert red.text("https://example.com/a:b@c") == "https://example.com/a:b@c"  # no credentials: unchanged
    assert red.text(f"use {GITHUB_TOKEN} now") == f"use {REDACTED} now"
    assert red.text(f"x={ENV_TOKEN}") == f"x={REDACTED}"
    assert red.argv(["run", "--password", "pw1234", "--token=abc", "api_key=zz", "--lr", "0.1", "tokenizer=bert"]) == [
        "run",
        "--password",
        REDACTED,
        f"--token={REDACTED}",
        f"api_key={REDACTED}",
        "--lr",
        "0.1",
        "tokenizer=bert",
    ]
    assert red.mapping({"db": {"password": "p", "host": "h"}, "max_tokens": 5}) == {
        "db": {"password": REDACTED, "host": "h"},
        "max_tokens": 5,
    }
    custom = Redactor(extra_keys=["^internal_"], extra_values=[r"corp-[0-9]{4}"])
    assert custom.mapping({"internal_id": "x", "note": "see corp-1234"}) == {
        "internal_id": REDACTED,
        "note": f"see {REDACTED}",
    }


def test_no_secret_reaches_any_file_under_cmf(repo: Path) -> None:
    config = repo / ".cmf" / "config.yaml"
    doc = canonical.load(config.read_bytes())
    doc["env"] = {"record": ["*"]}
    config.write_bytes(canonical.dump(doc))
    git(repo, "remote", "add", "origin", f"https://site-user:{REMOTE_PASSWORD}@git.example.com/team/repo.git")
    (repo / "params.yaml").write_text(f"db:\n  password: {NESTED_PASSWORD}\n  host: db.local\nbatch: 32\n")
    env = {
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "MY_SERVICE_TOKEN": ENV_TOKEN,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "DB_PASSWORD": DB_PASSWORD,
        "TOKENIZER": "bert",
        "PWD": str(repo),
    }
    command = [
        "echo",
        AWS_SECRET,  # a secret env var's value passed as a plain argument
        f"--db-url=postgres://admin:{URL_PASSWORD}@db.local/prod",
        "--password",
        ARGV_PASSWORD,
        f"--api-key={API_KEY}",
        f"--gh={GITHUB_TOKEN}",
        "--tokenizer",
        "bert",
    ]
    proc = cmfgit(
        repo,
        "log-run",
        "--commit",
        "-s",
        "train",
        "--params-file",
        "params.yaml",
        "-p",
        f"client_secret={PARAM_SECRET}",
        "-p",
        f"source=https://u:{URL_PASSWORD}@data.example.com/x.csv",
        "-p",
        f"gh={GITHUB_TOKEN}",
        "-p",
        "tokenizer=bert",
        "-p",
        "max_tokens=5",
        "--",
        *command,
        env=env,
    )
    assert AWS_SECRET in proc.stdout  # the command itself saw the real value
    # The Python API goes through the same filter.
    script = (
        "import cmfgit, sys\n"
        f"with cmfgit.run(stage='api', params={{'secret_key': '{API_SECRET}', 'lr': 0.1}}, "
        f"command=['train.py', '--token', '{API_SECRET}']):\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True, env={**os.environ, **env})

    runs = {r["stage"]: r for r in json.loads(cmfgit(repo, "log", "--json").stdout)}
    train = runs["train"]
    assert train["params"] == {
        "db.password": REDACTED,
        "db.host": "db.local",
        "batch": 32,
        "client_secret": REDACTED,
        "source": f"https://u:{REDACTED}@data.example.com/x.csv",
        "gh": REDACTED,
        "tokenizer": "bert",
        "max_tokens": 5,
    }
    assert train["command"] == [
        "echo",
        REDACTED,
        f"--db-url=postgres://admin:{REDACTED}@db.local/prod",
        "--password",
        REDACTED,
        f"--api-key={REDACTED}",
        f"--gh={REDACTED}",
        "--tokenizer",
        "bert",
    ]
    recorded = train["env"]["vars"]
    for name in ("AWS_SECRET_ACCESS_KEY", "MY_SERVICE_TOKEN", "GITHUB_TOKEN", "DB_PASSWORD"):
        assert recorded[name] == REDACTED, name
    assert recorded["TOKENIZER"] == "bert"
    assert recorded["PWD"] == str(repo)
    assert recorded["HOME"] == os.environ["HOME"]
    assert train["git"]["remote"] == f"https://site-user:{REDACTED}@git.example.com/team/repo.git"
    api_run = runs["api"]
    assert api_run["params"] == {"secret_key": REDACTED, "lr": 0.1}
    assert api_run["command"] == ["train.py", "--token", REDACTED]
    assert api_run["env"]["vars"]["AWS_SECRET_ACCESS_KEY"] == REDACTED

    # The real test: no raw secret in any byte under .cmf/, nor in git history.
    files = all_bytes_under(repo / ".cmf")
    assert len(files) >= 4
    for path, data in files:
        for secret in SECRETS:
            assert secret.encode() not in data, (secret, path)
    history = git(repo, "log", "-p", "--all")
    assert "cmfgit: record" in history
    for secret in SECRETS:
        assert secret not in history, secret
