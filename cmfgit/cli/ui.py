"""``cmfgit ui``: the read-only local web UI (the server is cmfgit/ui/server.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, RefOpt, RemoteOpt


@app.command()
def ui(
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="port to listen on (0: any free port)")
    ] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="address to listen on; anything but loopback is reachable without a password")
    ] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="do not open a web browser")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log one line per request on stderr")] = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> int:
    """Browse runs, lineage, artifacts and pipelines in a web browser (a read-only local server)."""
    from cmfgit.query import scope_of
    from cmfgit.ui.server import serve

    return serve(
        scope_of(ref, all_branches, global_, remote),
        host=host,
        port=port,
        open_browser=not no_browser,
        verbose=verbose,
    )
