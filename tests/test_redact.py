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


AUTH_SECRET = "auth-secret-0451"
PSW_SECRET = "psw-secret-9922"
CURL_SECRET = "curl-secret-7781"
LIBPQ_SECRET = "libpq-secret-3141"
SHELL_SECRET = "shell-secret-2718"
EQ_SECRET = "eq-secret-1618"
TOKEN_SECRET = "token-secret-5772"
HEADER_SECRET = "header-secret-1414"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["tool", "--auth", AUTH_SECRET], ["tool", "--auth", REDACTED]),
        (["tool", "-psw", PSW_SECRET], ["tool", "-psw", REDACTED]),
        (["curl", "-u", f"admin:{CURL_SECRET}", "https://x"], ["curl", "-u", f"admin:{REDACTED}", "https://x"]),
        (["curl", f"--user=admin:{CURL_SECRET}"], ["curl", f"--user=admin:{REDACTED}"]),
        (["curl", f"-uadmin:{CURL_SECRET}"], ["curl", f"-uadmin:{REDACTED}"]),
        (["tool", f"--password={EQ_SECRET}"], ["tool", f"--password={REDACTED}"]),
        (["tool", "--token", TOKEN_SECRET], ["tool", "--token", REDACTED]),
        (["tool", "--basic-auth", AUTH_SECRET], ["tool", "--basic-auth", REDACTED]),
        (["tool", "--db-pw", PSW_SECRET], ["tool", "--db-pw", REDACTED]),
        (["mysqladmin", "password", PSW_SECRET], ["mysqladmin", "password", REDACTED]),
        (
            ["sh", "-c", f"./login --user bob --password {SHELL_SECRET} && ./train"],
            ["sh", "-c", f"./login --user bob --password {REDACTED} && ./train"],
        ),
        (["sh", "-c", f"echo password {SHELL_SECRET}"], ["sh", "-c", f"echo password {REDACTED}"]),
        (
            ["sh", "-c", f"export DB_PASSWORD={SHELL_SECRET}; psql 'host=db user=x password={LIBPQ_SECRET}'"],
            ["sh", "-c", f"export DB_PASSWORD={REDACTED}; psql 'host=db user=x password={REDACTED}'"],
        ),
        (  # a KEY=VALUE argument is hidden whole after '=', spaces and all
            ["env", f"DB_PASSWORD={SHELL_SECRET} x", "run"],
            ["env", f"DB_PASSWORD={REDACTED}", "run"],
        ),
        (
            ["sh", "-c", f"curl -u admin:{CURL_SECRET} -H 'Authorization: Bearer {HEADER_SECRET}' x"],
            ["sh", "-c", f"curl -u admin:{REDACTED} -H 'Authorization: Bearer {REDACTED}' x"],
        ),
        (["psql", f"user=x password='{LIBPQ_SECRET} b'"], ["psql", f"user=x password='{REDACTED}'"]),
        # Ordinary arguments are kept, however close to a secret's shape.
        (["python", "-u", "train.py", "-p", "8080"], ["python", "-u", "train.py", "-p", "8080"]),
        (["docker", "run", "-u", "1000:1000", "img"], ["docker", "run", "-u", "1000:1000", "img"]),
        (["gh", "auth", "login"], ["gh", "auth", "login"]),
        (["kubectl", "create", "secret", "generic", "x"], ["kubectl", "create", "secret", "generic", "x"]),
        (["train", "--auth-url", "https://id.example.com", "--tokenizer", "bert"], None),
        (["train", "--auth-type", "oauth", "--max-tokens", "5", "--keyboard", "us"], None),
        (["sh", "-c", "python train.py --lr 0.1 --tokenizer bert --user bob"], None),
        (["sh", "-c", "git commit -m 'pass 2 of 3' && echo user=bob"], None),
    ],
)
def test_argv_forms(argv: list[str], expected: list[str] | None) -> None:
    assert Redactor().argv(argv) == (argv if expected is None else expected)


@pytest.mark.parametrize(
    "value, expected",
    [
        (f"host=db user=x password={LIBPQ_SECRET}", f"host=db user=x password={REDACTED}"),
        (f"user=x password={LIBPQ_SECRET} dbname=prod", f"user=x password={REDACTED} dbname=prod"),
        (f'{{"user": "x", "password": "{LIBPQ_SECRET}"}}', f'{{"user": "x", "password": "{REDACTED}"}}'),
        (f"https://api.example.com/v1?user=x&token={TOKEN_SECRET}&n=1", None),
        ("user=x host=db port=5432", "user=x host=db port=5432"),
        ("pass 2 of 3; token count: 5", "pass 2 of 3; token count: 5"),
    ],
)
def test_free_text_forms(value: str, expected: str | None) -> None:
    got = Redactor().text(value)
    if expected is None:
        assert TOKEN_SECRET not in got and "user=x" in got and "n=1" in got
    else:
        assert got == expected


@pytest.mark.parametrize(
    "key, secret",
    [
        ("auth", True),
        ("basic_auth", True),
        ("Authorization", True),
        ("psw", True),
        ("db_pw", True),
        ("pass", True),
        ("dbpassword", True),
        ("clientsecret", True),
        ("PGPASSWORD", True),
        ("MYSQL_PWD", True),
        ("auth_url", False),
        ("OS_AUTH_URL", False),
        ("auth_type", False),
        ("bypass", False),
        ("compass", False),
        ("SSH_AUTH_SOCK", False),
        ("GIT_ASKPASS", False),
    ],
)
def test_secret_keys_more(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"https://{GITHUB_TOKEN}@github.com/a/b.git", "https://REDACTED@github.com/a/b.git"),
        ("https://x-access-token:tok-abc-123@github.com/a/b", "https://x-access-token:REDACTED@github.com/a/b"),
        ("https://0123456789abcdef0123456789abcdef@dev.example.com/a", "https://REDACTED@dev.example.com/a"),
        ("https://alice@bitbucket.org/a/b.git", "https://alice@bitbucket.org/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git@host:2222/a/b.git", "ssh://git@host:2222/a/b.git"),
    ],
)
def test_url_credentials(url: str, shown: str) -> None:
    from cmfgit.redact import url_text

    assert url_text(url) == shown
    assert Redactor().text(url) == shown


def test_git_errors_hide_url_credentials() -> None:
    from cmfgit.errors import GitError

    err = GitError(["push", "origin"], 128, "fatal: unable to access 'https://bob:hunter2-pw@host/x/': refused\n")
    assert "hunter2-pw" not in str(err) and f"https://bob:{REDACTED}@host/x/" in str(err)


def test_the_forms_reach_no_record(repo: Path) -> None:
    """log-run's command and params, through the real CLI: no secret in any byte under .cmf."""
    remote_token = "q7w8e9r0t1y2u3i4o5p6a7s8d9f0g1h2j3k4l5z6x7c8v9b0n1m2"  # a PAT given as the user name
    git(repo, "remote", "add", "origin", f"https://{remote_token}@dev.example.com/org/repo")
    command = [
        "true",
        "--auth",
        AUTH_SECRET,
        "-psw",
        PSW_SECRET,
        "-u",
        f"admin:{CURL_SECRET}",
        f"--password={EQ_SECRET}",
        "--token",
        TOKEN_SECRET,
        "--lr",
        "0.1",
    ]
    cmfgit(
        repo,
        "log-run",
        "-s",
        "cli",
        "-p",
        f"dsn=user=x password={LIBPQ_SECRET}",
        "-p",
        "batch=32",
        "--",
        *command,
    )
    cmfgit(repo, "log-run", "-s", "shell", "--", "sh", "-c", f"echo password {SHELL_SECRET} >/dev/null")
    runs = {r["stage"]: r for r in json.loads(cmfgit(repo, "log", "--json").stdout)}
    assert runs["cli"]["command"] == [
        "true",
        "--auth",
        REDACTED,
        "-psw",
        REDACTED,
        "-u",
        f"admin:{REDACTED}",
        f"--password={REDACTED}",
        "--token",
        REDACTED,
        "--lr",
        "0.1",
    ]
    assert runs["cli"]["params"] == {"dsn": f"user=x password={REDACTED}", "batch": 32}
    assert runs["shell"]["command"] == ["sh", "-c", f"echo password {REDACTED} >/dev/null"]
    assert runs["cli"]["git"]["remote"] == f"https://{REDACTED}@dev.example.com/org/repo"
    secrets = [AUTH_SECRET, PSW_SECRET, CURL_SECRET, LIBPQ_SECRET, SHELL_SECRET, EQ_SECRET, TOKEN_SECRET, remote_token]
    files = all_bytes_under(repo / ".cmf")
    assert len(files) >= 3
    for path, data in files:
        for secret in secrets:
            assert secret.encode() not in data, (secret, path)


def test_the_text_hints_cover_every_secret_word() -> None:
    """Free text is scanned for key/value pairs only when it holds a hint: every
    word that makes a key secret must contain one."""
    from cmfgit import redact

    words = [
        *redact._SECRET_WORDS,
        *redact._SECRET_TAILS,
        *redact._SECRET_QUALIFIED_TAILS,
        *redact._SECRET_SUFFIXES,
        *redact._SECRET_JOINED,
        *redact._PASSWORD_WORDS,
        *(" ".join(p) for p in redact._SECRET_PAIRS),
        *redact._USER_OPTIONS,
    ]
    for word in words:
        assert any(h in word for h in redact._HINTS), word


def test_export_hides_the_remote_credentials_an_older_record_holds(repo: Path) -> None:
    """A record written before a rule existed keeps its bytes (its id), but what
    cmfgit prints from it, here an export for CMF, shows no credential."""
    from qhelp import art, execution, put

    token = "q7w8e9r0t1y2u3i4o5p6a7s8d9f0g1h2j3k4"
    rec = execution("train", [art("raw")], [art("model", "model")], pipeline="wine")
    rec["git"]["remote"] = f"https://{token}@dev.example.com/org/repo"
    put(repo, rec)
    out = cmfgit(repo, "export", "--format", "cmf-json", "--pipeline", "wine").stdout
    assert token not in out and "https://REDACTED@dev.example.com/org/repo" in out
