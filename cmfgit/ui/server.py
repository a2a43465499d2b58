"""The read-only local web server of ``cmfgit ui``: the page in ``static/``, ``/config.js`` and ``/api/*``.

The standard library's ``ThreadingHTTPServer``; nothing to install. What keeps it safe:

- GET and HEAD only (anything else: 405); no endpoint writes.
- The Host header must name this server (its bound address, ``localhost`` or ``127.0.0.1``,
  with its port), so a page of another site that a DNS rebinding points here gets 403.
- The static route serves regular files inside ``static/`` only: ``..``, encoded or not,
  absolute paths and symlinks that lead out are refused.
- Every response has a Content-Security-Policy (scripts and data from this origin only),
  ``X-Content-Type-Options: nosniff`` and no framing.
- It binds 127.0.0.1 unless told otherwise (``cmfgit ui --host`` warns: there is no authentication).

New records are picked up on request: the index is refreshed at most once per
``refresh_interval`` seconds, and the query reopened only when the refresh found changes.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cmfgit.errors import CmfgitError
from cmfgit.index import Scope, open_index
from cmfgit.query import CmfQuery
from cmfgit.repo import Repo
from cmfgit.ui import api

STATIC = Path(__file__).resolve().parent / "static"
CONFIG_JS = b'window.CMF_CONFIG = {mode: "server"};\n'
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
PLACEHOLDER = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>cmfgit ui</title></head>
<body><h1>cmfgit ui</h1><p>The page's files are not installed; the JSON API answers at
<a href="api/info">api/info</a>, <a href="api/runs">api/runs</a> and <a href="api/pipelines">api/pipelines</a>.</p>
</body></html>
"""
# Answers that depend on the index alone (not on git, the clock or the working tree), kept
# until the index changes: their aggregates scan every event, seconds at a million records.
CACHED = frozenset({"artifacts", "artifact", "pipelines"})
CACHE_SIZE = 64


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.strip("[]").lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class Source:
    """The query the API reads, brought up to date on request (at most once per interval)."""

    def __init__(self, repo: Repo, scope: Scope, refresh_interval: float = 1.0) -> None:
        self.repo = repo
        self.scope = scope
        self.refresh_interval = refresh_interval
        self.lock = threading.Lock()  # one request at a time reads the index (one sqlite connection)
        self._query = CmfQuery(repo, scope=scope, warn=False)
        self._checked = time.monotonic()
        self.answers: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}  # of CACHED endpoints

    def answer(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        """The endpoint's answer; those that only read the index (``CACHED``) kept until it changes."""
        with self.lock:
            q = self.query()
            if endpoint not in CACHED:
                return api.call(q, endpoint, params)
            key = (endpoint, tuple(sorted(params.items())))
            found = self.answers.get(key)
            if found is None:
                found = api.call(q, endpoint, params)
                if len(self.answers) >= CACHE_SIZE:
                    self.answers.pop(next(iter(self.answers)))
                self.answers[key] = found
            return found

    def query(self) -> CmfQuery:
        """The query, refreshed first if the last check is older than the interval (hold ``lock``)."""
        now = time.monotonic()
        if now - self._checked >= self.refresh_interval:
            index = open_index(self.repo, self.scope)
            self._checked = time.monotonic()
            if any(index.stats[k] for k in ("added", "removed", "files")):
                old, self._query = self._query, CmfQuery(self.repo, scope=self.scope, index=index, warn=False)
                old.close()
                self.answers.clear()
            else:
                index.close()
        return self._query

    def close(self) -> None:
        with self.lock:
            self._query.close()


class UiServer(ThreadingHTTPServer):
    """The HTTP server; ``source`` answers the API, ``static`` holds the page."""

    daemon_threads = True
    allow_reuse_address = True  # (a port in TIME_WAIT, never one with a listener: that is EADDRINUSE)

    def __init__(self, host: str, port: int, source: Source, *, static: Path = STATIC, verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self.source = source
        self.static = static
        self.verbose = verbose
        super().__init__((host.strip("[]"), port), Handler)
        self.host = host.strip("[]")
        self.port = int(self.server_address[1])
        self.allowed_hosts = self._allowed()

    def _allowed(self) -> set[str]:
        names = {"localhost", "127.0.0.1", "[::1]"}
        names.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        if self.host in ("0.0.0.0", "::"):
            for name in (socket.gethostname(), socket.getfqdn()):
                names.add(name.lower())
        return names

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's Host header names this server (DNS rebinding sends another name)."""
        if not header:
            return False
        text = header.strip().lower()
        if text.startswith("["):
            name, _, rest = text.partition("]")
            name += "]"
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = text.partition(":")
        if (port or "80") != str(self.port):
            return False
        if name in self.allowed_hosts:
            return True
        # Bound to every address: a client may name any of them by its number (no DNS, no rebinding).
        return self.host in ("0.0.0.0", "::") and _is_ip(name)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke mid-answer (the browser moved on): one line with ``--verbose``,
        else nothing; never socketserver's traceback."""
        if self.verbose:
            exc = sys.exc_info()[1]
            print(f"cmfgit ui: {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)

    def server_close(self) -> None:
        super().server_close()
        self.source.close()


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "cmfgit-ui"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def version_string(self) -> str:
        return self.server_version

    # -- methods ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method but GET and HEAD: refused, whatever its name
            return self._refuse
        raise AttributeError(name)

    def _refuse(self) -> None:
        self.close_connection = True  # (its body, if any, is not read)
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "read-only: only GET and HEAD", "where": None})

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    # -- routing ---------------------------------------------------------------------

    def _answer(self) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            self._json(HTTPStatus.FORBIDDEN, {"error": "this server answers to its own host name only", "where": None})
            return
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/api/"):
            self._api(path[len("/api/") :], parts.query)
        elif path == "/config.js":
            self._send(HTTPStatus.OK, CONFIG_JS, TYPES[".js"], cache="no-store")
        else:
            self._static(path)

    def _api(self, endpoint: str, query: str) -> None:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            status, body = HTTPStatus.OK, self.server.source.answer(endpoint, params)
        except Exception as exc:  # one JSON error, never a traceback
            code, body = api.error_payload(exc)
            status = HTTPStatus(code)
            if self.server.verbose and not isinstance(exc, CmfgitError):
                import traceback

                traceback.print_exc(file=sys.stderr)
        self._json(status, body)

    def _static(self, raw: str) -> None:
        text = unquote(raw)
        segments = [s for s in text.split("/") if s]
        bad = any(s in (".", "..") or "\\" in s or "\x00" in s or ":" in s for s in segments)
        if bad or not text.startswith("/"):
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found", "where": None})
            return
        root = self.server.static.resolve()
        if not segments:
            segments = ["index.html"]
        target = root.joinpath(*segments)
        try:
            real = target.resolve(strict=True)
        except (OSError, RuntimeError):
            real = None
        if real is not None and real.is_dir():
            real = (real / "index.html").resolve() if (real / "index.html").is_file() else None
        if real is None or not real.is_relative_to(root) or not real.is_file():
            if segments == ["index.html"]:
                self._send(HTTPStatus.OK, PLACEHOLDER, TYPES[".html"], cache="no-store")
                return
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found", "where": None})
            return
        try:
            data = real.read_bytes()
        except OSError:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found", "where": None})
            return
        self._send(HTTPStatus.OK, data, TYPES.get(real.suffix.lower(), "application/octet-stream"), cache="no-cache")

    # -- responses ---------------------------------------------------------------------

    def _json(self, status: HTTPStatus, body: Any) -> None:
        try:
            data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError):
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            data = b'{"error":"internal error: unencodable value","where":null}'
        self._send(status, data, "application/json; charset=utf-8", cache="no-store")

    def _send(self, status: HTTPStatus, data: bytes, ctype: str, cache: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the request parser finds (a malformed request line, a header too long): JSON too."""
        self.close_connection = True
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self._json(status, {"error": message or status.phrase, "where": None})

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def start(
    repo: Repo,
    scope: Scope,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    verbose: bool = False,
    static: Path = STATIC,
    refresh_interval: float = 1.0,
) -> UiServer:
    """A bound server (not yet serving): ``port=0`` takes any free port (``.port`` says which).
    A busy port or an address that cannot be bound is a one-line :class:`CmfgitError`."""
    source = Source(repo, scope, refresh_interval)
    try:
        return UiServer(host, port, source, static=static, verbose=verbose)
    except OSError as exc:
        source.close()
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise CmfgitError(
                f"port {port} on {host} is in use: choose another with --port (0: any free port)"
            ) from None
        raise CmfgitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def display_available() -> bool:
    """Whether a browser opened here would show up on a screen."""
    import os

    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(
    scope: Scope,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    verbose: bool = False,
    repo: Repo | None = None,
) -> int:
    """``cmfgit ui``: serve until Ctrl-C (then exit 0). Prints the URL; opens a browser on a display."""
    from cmfgit.repo import open_read_repo

    server = start(repo or open_read_repo(None), scope, host, port, verbose=verbose)
    if not is_loopback(host):
        print(
            f"cmfgit: warning: listening on {host}: the UI has no authentication; "
            "anyone who can reach this address can read these records",
            file=sys.stderr,
        )
    with server.source.lock:
        bad = server.source.query().unreadable()
    if bad:
        from cmfgit.query import unreadable_note

        print(f"cmfgit: warning: {unreadable_note(bad)}", file=sys.stderr)
    print(f"cmfgit ui: serving {server.source.scope.describe()} at {server.url} (Ctrl-C to stop)", flush=True)
    if open_browser and display_available():
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("cmfgit ui: stopped", flush=True)
    finally:
        server.server_close()
    return 0
