"""``cmfgit mcp``: an MCP server over stdio for AI assistants (the server is cmfgit/mcp_server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, RefOpt, RemoteOpt


@app.command()
def mcp(
    allow_tag: Annotated[
        bool, typer.Option("--allow-tag", help="offer the tag tool, which writes annotation records (else read-only)")
    ] = False,
    repo: Annotated[
        Optional[Path],
        typer.Option("--repo", help="the repository to serve (default: the one containing the current directory)"),
    ] = None,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> int:
    """Serve the metadata to AI assistants: an MCP server on stdin/stdout (needs cmfgit[mcp]).

    Tools: pipelines, search_runs, show_run, lineage, compare_runs, artifacts,
    artifact, tags, and with --allow-tag, tag. Answers are compact JSON in the
    shapes of --json (docs/json.md).
    """
    from cmfgit.mcp_server import serve
    from cmfgit.query import scope_of

    return serve(scope_of(ref, all_branches, global_, remote), repo=repo, allow_tag=allow_tag)
