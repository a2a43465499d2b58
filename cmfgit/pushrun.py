"""``cmfgit push`` without typer: a well-formed command line, run and printed.

Importing the typer CLI costs a push about as much CPU as the push itself
(typer, rich and every command module; ~0.8 s of 1.5 s on the busy 2-core
machine of docs/benchmarks.md), and many sites push at once. So
``push [REMOTE] [--json] [--data|--no-data]`` is read here (``main.py``), and
anything else (``--help``, an unknown option) goes to the typer command in
``cli/sync.py``, which calls :func:`run` too: one output, two parsers.
"""

from __future__ import annotations

import sys
from typing import Any

_FLAGS = {"--json": ("as_json", True), "--data": ("data", True), "--no-data": ("data", False)}


def parse(args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments of :func:`run` for a plain push command line, else None."""
    options: dict[str, Any] = {"remote": None, "data": None, "as_json": False}
    positional: list[str] = []
    for arg in args:
        if arg in _FLAGS:
            key, value = _FLAGS[arg]
            options[key] = value
        elif arg.startswith("-"):
            return None
        else:
            positional.append(arg)
    if len(positional) > 1:
        return None
    options["remote"] = positional[0] if positional else None
    return options


def run(remote: str | None, data: bool | None, as_json: bool) -> int:
    """Push, print what happened, push data when wanted; raise when the branch was not pushed."""
    from cmfgit import gitutil
    from cmfgit.repo import open_repo

    repo = open_repo()
    with gitutil.config_snapshot(repo.root):  # one 'git config --list' for the whole push
        return _run(repo, remote, data, as_json)


def _run(repo: Any, remote: str | None, data: bool | None, as_json: bool) -> int:
    from cmfgit import sync
    from cmfgit.errors import ConflictError
    from cmfgit.init import configure_and_say

    configure_and_say(repo)  # as main._autoconfigure does for every other command, from the snapshot
    result = sync.push(repo, remote)
    if as_json:
        import dataclasses
        import json

        print(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))
    else:
        print_push(result)
    if result.global_update is not None:
        report_skipped(result.global_update.skipped)
    if result.site is not None and result.site.shared_name:
        print(
            f"cmfgit: warning: another clone also publishes as site '{result.site.site}': its records were kept "
            f"(merged into {result.site.ref}); give each clone its own name ('git config cmfgit.site NAME')",
            file=sys.stderr,
        )
    push_data(data, repo, result.branch, result.remote)
    if result.branch_error:
        raise ConflictError(result.branch_error)
    return 0


def print_push(result: Any) -> None:
    for item in result.configured:
        print(f"configured {item}")
    if result.commit:
        print(f"committed  {pending(result.what)} in {result.commit[:12]}")
    merged = f" after {result.merges} merge(s) of {result.remote}/{result.destination}" if result.merges else ""
    state = "NOT pushed (see below)" if result.branch_error else "pushed" if result.pushed else "up to date"
    print(f"branch     {result.branch} -> {result.remote}/{result.destination}: {state}{merged}")
    site = result.site
    if site is not None:
        if site.error:
            print(f"site       {result.remote} {site.ref}: not published ({site.error})")
        elif site.pushed:
            print(f"site       {result.remote} {site.ref}: +{site.added} record(s), {site.records} in the site ref")
        elif site.commit:
            print(f"site       {result.remote} {site.ref}: up to date, {site.records} record(s)")
    g = result.global_update
    if g is not None:
        if g.by_central:
            print(f"global     {g.remote}/cmf/global: {g.records} record(s), kept by the central's post-receive hook")
        elif g.gave_up:
            print(
                f"global     {g.remote}/cmf/global: not updated, other sites were updating it ({g.attempts} tries); "
                "nothing is lost: readers union the site refs"
            )
        else:
            change = f"+{g.added} record(s)" if g.updated else "already up to date"
            raced = f" ({g.attempts} attempts: other pushes came first)" if g.attempts > 1 else ""
            print(f"global     {g.remote}/cmf/global: {change}, {g.records} record(s) in the view{raced}")


def push_data(wanted: bool | None, repo: Any, branch: str | None, pushed_to: str | None = None) -> None:
    """The bytes of the records just published, to the default data remote (only what it lacks)."""
    from cmfgit.data import remote

    if wanted is None and not remote.remotes(repo) and not _data_remotes_elsewhere(repo, branch, pushed_to):
        return  # as remote.effective would find: none here, none on the default branch
    if wanted is False or (
        wanted is None and not any(spec.default and spec.layout != "dvc" for spec in remote.effective(repo))
    ):
        # A DVC-layout remote is read-only for cmfgit. Decided before importing the data
        # layer (~0.2 s of start-up: the query index, the selection).
        return
    from cmfgit.data import ops
    from cmfgit.data.selection import Query
    from cmfgit.data.transfer import DEFAULT_JOBS

    result = ops.push(repo, Query(), None, DEFAULT_JOBS)
    missing = f"; {len(result.unavailable)} not available here" if result.unavailable else ""
    print(
        f"data       {result.remote}: pushed {result.pushed:,} object(s), {result.bytes:,} bytes;"
        f" {result.already:,} already there{missing}"
    )


def _data_remotes_elsewhere(repo: Any, branch: str | None, pushed_to: str | None = None) -> bool:
    """Might the default branch's ``.cmf/config.yaml`` name data remotes (what
    ``remote.fallback`` reads when this branch's names none)? Its candidates in one
    ``git cat-file --batch`` rather than seven git processes; True sends the caller
    to ``remote.effective``, which decides (and says where they came from)."""
    from cmfgit import gitutil

    # The push may have just set the upstream (--set-upstream): the config read before it
    # does not say so, the remote it pushed to does.
    configured = (gitutil.config_get(repo.root, f"branch.{branch}.remote") if branch else None) or pushed_to
    origin = configured if configured and configured != "." else "origin"
    refs = [f"refs/remotes/{origin}/{name}" for name in ("HEAD", "main", "master")] + [
        "refs/heads/main",
        "refs/heads/master",
    ]
    listing = "".join(f"{ref}:.cmf/config.yaml\n" for ref in refs).encode()
    out = gitutil.git(["cat-file", "--batch"], repo.root, input=listing, check=False)
    at = 0
    while at < len(out):  # '<oid> blob <size>\n<content>\n', or '<name> missing\n'
        end = out.find(b"\n", at)
        header = out[at : end if end >= 0 else len(out)].split()
        at = end + 1 if end >= 0 else len(out)
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            if b"remotes" in out[at : at + size]:
                return True
            at += size + 1
    return False


def report_skipped(skipped: list[str]) -> None:
    """The damaged files a union of the global view left out, on stderr, each path once."""
    for line in skipped:
        print(f"cmfgit: warning: {line}", file=sys.stderr)
    if skipped:
        hint = "every other record is in the view; 'cmfgit fsck' in a checkout of the branch that holds them lists them"
        print(f"cmfgit: warning: {hint}", file=sys.stderr)


def pending(what: str) -> str:
    """'3 record(s)' -> '3 pending record(s)'; 'settings' -> 'pending settings'."""
    return f"{what.split(' ', 1)[0]} pending {what.split(' ', 1)[1]}" if what[:1].isdigit() else f"pending {what}"
