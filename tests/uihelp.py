"""Helpers for the UI tests: a real `cmfgit ui` server on 127.0.0.1 in this process, its
JSON over real HTTP, raw requests over a socket (no client that tidies the path), and a
small repository with lineage (prepare -> train -> evaluate) made of valid records."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qhelp import art, execution, put, ts

from cmfgit.index import CHECKOUT, Scope
from cmfgit.repo import open_read_repo
from cmfgit.ui import server


@contextmanager
def serving(root: Path, scope: Scope = CHECKOUT, **kwargs: Any) -> Iterator[server.UiServer]:
    """A server over the repository at ``root`` on a free port of 127.0.0.1, serving in a thread."""
    srv = server.start(open_read_repo(root), scope, "127.0.0.1", 0, **kwargs)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


def get(srv: server.UiServer, path: str) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON) of a GET of ``path`` (e.g. ``api/runs?limit=2``)."""
    try:
        with urllib.request.urlopen(srv.url + path, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, dict(err.headers), json.loads(body) if body else None


def api(srv: server.UiServer, path: str) -> Any:
    """The JSON of a GET that must succeed."""
    status, _headers, body = get(srv, "api/" + path)
    assert status == 200, (status, body)
    return body


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; (status, headers with lower-case names, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def request(port: int, path: str, method: str = "GET", host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP/1.1 request with ``Connection: close``; the Host header is the server's unless given."""
    shown = host if host is not None else f"127.0.0.1:{port}"
    text = f"{method} {path} HTTP/1.1\r\nHost: {shown}\r\nConnection: close\r\n\r\n"
    return raw(port, text.encode("latin-1"))


# -- a repository with lineage ---------------------------------------------------------

RAW = art("raw", "dataset", path="data/raw.csv")
CLEAN_1 = art("clean-1", "dataset", path="data/clean.csv")
CLEAN_2 = art("clean-2", "dataset", path="data/clean.csv")
MODEL = art("model-1", "model", path="models/model.pkl")
MODEL_BAD = art("model-2", "model", path="models/model.pkl")
REPORT = art("report-1", "metrics", path="reports/eval.json")
COMMIT = "c" * 40


def lineage_records() -> dict[str, dict[str, Any]]:
    """prepare (twice: two versions of clean.csv), train (three runs and a failed one), evaluate."""
    git = {
        "commit": COMMIT,
        "branch": "main",
        "dirty": False,
        "remote": "git@github.com:acme/wine.git",
        "tree": "d" * 40,
    }
    return {
        "prepare1": execution("prepare", [RAW], [CLEAN_1], pipeline="wine", started_at=ts(10)),
        "prepare2": execution("prepare", [RAW], [CLEAN_2], pipeline="wine", started_at=ts(20)),
        "train_a": execution(
            "train",
            [CLEAN_2],
            [MODEL],
            pipeline="wine",
            params={"lr": 0.1, "lr_2": 2, "lr_10": 10, "epochs": 5},
            metrics={"acc": 0.8, "loss": 0.5},
            started_at=ts(30),
            ended_at=ts(42),
            step_metrics={"loss": [[0, 1.0], [1, 0.7], [2, 0.5]]},
            git=git,
        ),
        "train_b": execution(
            "train",
            [CLEAN_2],
            [MODEL],
            pipeline="wine",
            params={"lr": 0.01, "lr_2": 2, "lr_10": 10, "epochs": 5},
            metrics={"acc": 0.9, "loss": 0.3},
            started_at=ts(40),
            step_metrics={"loss": [[0, 1.0], [1, 0.4], [2, 0.3]]},
        ),
        "train_c": execution(
            "train",
            [CLEAN_2],
            [MODEL],
            pipeline="wine",
            params={"lr": 0.001, "lr_2": 3, "lr_10": 10, "epochs": 8},
            metrics={"acc": 0.85, "loss": 0.4},
            started_at=ts(50),
        ),
        "train_failed": execution(
            "train",
            [CLEAN_2],
            [MODEL_BAD],
            pipeline="wine",
            params={"lr": 5.0, "epochs": 5},
            started_at=ts(60),
            exit_code=1,
        ),
        "evaluate": execution("evaluate", [MODEL], [REPORT], pipeline="wine", metrics={"f1": 0.7}, started_at=ts(70)),
    }


def lineage_repo(root: Path) -> dict[str, str]:
    """Write :func:`lineage_records` into the checkout at ``root``; name -> record id."""
    records = lineage_records()
    return dict(zip(records, put(root, *records.values())))
