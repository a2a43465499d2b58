"""`cmfgit ui`'s server: what keeps it safe (issue 12, item 6), and the command itself.

Raw socket requests, so that no HTTP client tidies a path (``..``) or a Host header away.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_repo
from uihelp import lineage_repo, raw, request, serving

from cmfgit.errors import CmfgitError
from cmfgit.index import CHECKOUT
from cmfgit.repo import open_read_repo
from cmfgit.ui import server

SECRET = "the contents of a file outside the static folder"


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A repository with runs, and a static folder with a page, a file beside it and links out."""
    root = make_repo(tmp_path / "wine")
    lineage_repo(root)
    static = tmp_path / "web" / "static"
    (static / "vendor").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>runs page</title>")
    (static / "app.js").write_text("console.log('app')")
    (static / "style.css").write_text("body {}")
    (static / "vendor" / "lib.js").write_text("var lib = 1;")
    (tmp_path / "web" / "secret.txt").write_text(SECRET)
    (static / "link.txt").symlink_to(tmp_path / "web" / "secret.txt")
    (static / "linkdir").symlink_to(tmp_path / "web")
    return root, static


def test_serves_the_page_config_and_json_with_the_right_types(site: tuple[Path, Path]) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        page = request(srv.port, "/")
        app = request(srv.port, "/app.js")
        css = request(srv.port, "/style.css")
        lib = request(srv.port, "/vendor/lib.js")
        config = request(srv.port, "/config.js")
        runs = request(srv.port, "/api/runs?limit=1")
    assert page[0] == 200 and page[1]["content-type"] == "text/html; charset=utf-8"
    assert b"runs page" in page[2]
    assert (
        app[0] == 200 and app[1]["content-type"] == "text/javascript; charset=utf-8" and app[2] == b"console.log('app')"
    )
    assert css[1]["content-type"] == "text/css; charset=utf-8"
    assert lib[2] == b"var lib = 1;"
    assert config[0] == 200 and config[2] == b'window.CMF_CONFIG = {mode: "server"};\n'
    assert runs[0] == 200 and runs[1]["content-type"] == "application/json; charset=utf-8"
    assert json.loads(runs[2])["total"] == 7


def test_a_placeholder_page_without_the_static_files(site: tuple[Path, Path], tmp_path: Path) -> None:
    root, _static = site
    with serving(root, static=tmp_path / "nothing") as srv:
        status, headers, body = request(srv.port, "/")
    assert status == 200 and b"api/runs" in body
    assert "content-security-policy" in headers


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2fsecret.txt",
        "/vendor/../../secret.txt",
        "/vendor/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/%2e%2e%5csecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/link.txt",
        "/linkdir/secret.txt",
        "/./../secret.txt",
        "/%00../secret.txt",
        "http://127.0.0.1/../secret.txt",
    ],
)
def test_the_static_route_stays_in_its_folder(site: tuple[Path, Path], path: str) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        status, headers, body = request(srv.port, path)
    assert status == 404, (path, status, body)
    assert SECRET.encode() not in body and b"root:" not in body
    assert headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "127.0.0.1:1", "localhost", "evil.example", "", "127.0.0.2:{port}"]
)
def test_a_foreign_host_header_is_refused(site: tuple[Path, Path], host: str) -> None:
    """DNS rebinding: a page of another site whose name now resolves to 127.0.0.1."""
    root, static = site
    with serving(root, static=static) as srv:
        status, headers, body = request(srv.port, "/api/runs", host=host.format(port=srv.port))
        page_status, _h, page = request(srv.port, "/", host=host.format(port=srv.port))
    assert status == 403 and page_status == 403
    assert b'"total"' not in body and b"runs page" not in page
    assert "content-security-policy" in headers


def test_no_host_header_is_refused(site: tuple[Path, Path]) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        status, _h, _body = raw(srv.port, b"GET /api/runs HTTP/1.0\r\n\r\n")
    assert status == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_its_own_names_are_accepted(site: tuple[Path, Path], host: str) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        status, _h, body = request(srv.port, "/api/info", host=host.format(port=srv.port))
    assert status == 200 and json.loads(body)["executions"] == 7


def test_host_check_when_bound_to_every_address(site: tuple[Path, Path]) -> None:
    root, static = site
    srv = server.start(open_read_repo(root), CHECKOUT, "0.0.0.0", 0)
    try:
        port = srv.port
        assert srv.host_allowed(f"127.0.0.1:{port}")
        assert srv.host_allowed(f"192.168.1.20:{port}")  # a number: no DNS, so no rebinding
        assert srv.host_allowed(f"{socket.gethostname()}:{port}")
        assert not srv.host_allowed(f"evil.example:{port}")
        assert not srv.host_allowed(f"192.168.1.20:{port + 1}")
    finally:
        srv.server_close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "TRACE"])
def test_only_get_and_head(site: tuple[Path, Path], method: str) -> None:
    root, static = site
    before = sorted(p.name for p in (root / ".cmf" / "objects").rglob("*"))
    with serving(root, static=static) as srv:
        status, headers, body = request(srv.port, "/api/runs", method=method)
        page_status, _h, _page = request(srv.port, "/index.html", method=method)
        head = request(srv.port, "/api/runs", method="HEAD")
    assert status == 405 and page_status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error"].startswith("read-only")
    assert head[0] == 200 and head[2] == b"" and int(head[1]["content-length"]) > 0
    assert sorted(p.name for p in (root / ".cmf" / "objects").rglob("*")) == before


@pytest.mark.parametrize("path", ["/", "/api/runs", "/api/run?id=00000000", "/nothing", "/config.js", "/app.js"])
def test_security_headers_on_every_response(site: tuple[Path, Path], path: str) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        _status, headers, _body = request(srv.port, path)
        refused = request(srv.port, path, host="evil.example")[1]
        posted = request(srv.port, path, method="POST")[1]
    for h in (headers, refused, posted):
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
        assert h["x-content-type-options"] == "nosniff"


def test_a_malformed_request_gets_a_json_error(site: tuple[Path, Path]) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        many = b"".join(b"X-%d: 1\r\n" % i for i in range(120))
        status, headers, body = raw(srv.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
    assert status == 431
    assert "content-security-policy" in headers
    assert "error" in json.loads(body)


def test_an_error_is_one_json_line_never_a_traceback(site: tuple[Path, Path]) -> None:
    root, static = site
    with serving(root, static=static) as srv:
        status, _h, body = request(srv.port, "/api/lineage?target=nope&depth=-3")
    assert status == 400
    payload = json.loads(body)
    assert set(payload) == {"error", "where"} and "Traceback" not in payload["error"]


def test_a_busy_port_is_a_one_line_error(site: tuple[Path, Path]) -> None:
    root, _static = site
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CmfgitError, match=f"port {port} on 127.0.0.1 is in use"):
            server.start(open_read_repo(root), CHECKOUT, "127.0.0.1", port)
        proc = subprocess.run(
            [sys.executable, "-m", "cmfgit", "ui", "--port", str(port), "--no-browser"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"cmfgit: error: port {port} on 127.0.0.1 is in use: choose another with --port (0: any free port)"
    ]


def _start_ui(root: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfgit", "ui", "--port", "0", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "http://" in line, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    url = line[line.index("http://") :].split()[0]
    return proc, url


def _hang_up(port: int, path: str) -> None:
    """Ask, then reset the connection without reading the answer."""
    import struct

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return out, err


def test_cmfgit_ui_prints_the_url_serves_and_stops_on_ctrl_c(site: tuple[Path, Path]) -> None:
    root, _static = site
    proc, url = _start_ui(root)
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert url == f"http://127.0.0.1:{port}/"
        status, _h, body = request(port, "/api/info")
        assert status == 200 and json.loads(body)["executions"] == 7
        status, _h, body = request(port, "/api/runs?where=params.lr%20%3C%200.05")
        assert [r["params"]["lr"] for r in json.loads(body)["rows"]] == [0.001, 0.01]
        _hang_up(port, "/api/runs?limit=1000")  # a client gone mid-answer: no traceback either
        assert request(port, "/api/info")[0] == 200
    finally:
        out, err = _stop(proc)
    assert proc.returncode == 0
    assert "stopped" in out
    assert err == ""  # quiet: no request log without --verbose


def test_verbose_logs_one_line_per_request(site: tuple[Path, Path]) -> None:
    root, _static = site
    proc, url = _start_ui(root, "--verbose", "--no-browser")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        request(port, "/api/info")
        request(port, "/api/runs")
    finally:
        _out, err = _stop(proc)
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert '"GET /api/info HTTP/1.1" 200' in lines[0] and '"GET /api/runs HTTP/1.1" 200' in lines[1]


def test_a_non_loopback_host_warns_there_is_no_authentication(site: tuple[Path, Path]) -> None:
    root, _static = site
    proc, url = _start_ui(root, "--host", "0.0.0.0", "--no-browser")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert request(port, "/api/info")[0] == 200
    finally:
        _out, err = _stop(proc)
    assert "warning" in err and "no authentication" in err


def test_loopback_hosts_do_not_warn() -> None:
    assert server.is_loopback("127.0.0.1") and server.is_loopback("localhost") and server.is_loopback("::1")
    assert server.is_loopback("127.0.0.5")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.168.1.2")
    assert not server.is_loopback("example.org")


def test_concurrent_requests_all_answer(site: tuple[Path, Path]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    root, static = site
    paths = ["/api/runs?limit=3", "/api/pipelines", "/api/artifacts", "/app.js", "/api/info"] * 8
    with serving(root, static=static) as srv:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda p: request(srv.port, p), paths))
    assert [a[0] for a in answers] == [200] * len(paths)
    assert {json.loads(a[2])["total"] for a, p in zip(answers, paths) if p.startswith("/api/runs")} == {7}


def test_unreadable_records_are_said_once_at_start_and_in_info(site: tuple[Path, Path]) -> None:
    root, _static = site
    victim = next(p for p in sorted((root / ".cmf" / "objects").rglob("*.yaml")))
    victim.write_text("schema: not what its name says\n")
    proc, url = _start_ui(root, "--no-browser")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        info = json.loads(request(port, "/api/info")[2])
    finally:
        _out, err = _stop(proc)
    assert info["unreadable"] == 1 and info["executions"] == 6
    assert err.strip().splitlines() == [
        "cmfgit: warning: 1 record(s) could not be read and are left out; run 'cmfgit fsck'"
    ]
