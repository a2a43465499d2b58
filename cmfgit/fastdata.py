"""``cmfgit artifact push|fetch|pull`` without typer.

typer and its imports cost these commands about 0.3 s of start-up, most of
a push that finds nothing to do. Well-formed command lines are parsed here
and call the same functions as the typer commands (``data/ops.py``), and
print through the same functions; anything else (``--help``, an unknown
or malformed option, a bad number) makes :func:`parse` return None and the
typer command line handles it, so help and error messages have one source.

The options are those of ``cli/data.py``; ``tests/test_fastdata.py`` runs
both paths on the same arguments and compares their output.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SELECTION_VALUES = {
    "-P": "pipeline",
    "--pipeline": "pipeline",
    "-s": "stage",
    "--stage": "stage",
    "-a": "artifact",
    "--artifact": "artifact",
}
_REPEATED = frozenset({"pipeline", "stage", "artifact"})
_VALUES = {
    **_SELECTION_VALUES,
    "--since": "since",
    "-r": "remote",
    "--remote": "remote",
    "-j": "jobs",
    "--jobs": "jobs",
}
_FLAGS = {"--with-lineage": "with_lineage", "--json": "as_json"}
_PULL_FLAGS = {**_FLAGS, "-f": "force", "--force": "force"}
COMMANDS = ("push", "fetch", "pull")
_RUN = re.compile(r"^[0-9a-f]{4,64}$")


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(command, keyword arguments) for a plain, valid ``artifact push|fetch|pull``
    line (``args`` starts with ``artifact``), read as click reads it; None when
    typer should handle it."""
    if len(args) < 2 or args[0] != "artifact" or args[1] not in COMMANDS:
        return None
    command, rest = args[1], args[2:]
    flags = _PULL_FLAGS if command == "pull" else _FLAGS
    found: dict[str, Any] = {}
    targets: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg == "--":
            targets += rest[i:]
            break
        if arg.startswith("-") and len(arg) > 1:
            long = arg.startswith("--")
            name, eq, value = arg.partition("=") if long else (arg[:2], "", arg[2:])
            if name in flags and not eq and not value:
                found[flags[name]] = True
                continue
            if name not in _VALUES:
                return None  # -h, --help, combined short flags, unknown: typer says what is wrong
            if not eq and not value:
                if i >= len(rest):
                    return None
                value, i = rest[i], i + 1
            key = _VALUES[name]
            if key in _REPEATED:
                found.setdefault(key, []).append(value)
            else:
                found[key] = value
        else:
            targets.append(arg)
    if "jobs" in found:
        try:
            found["jobs"] = int(found["jobs"])
        except ValueError:
            return None
    found["targets"] = targets
    return command, found


def split_targets(targets: list[str]) -> tuple[list[str], list[str]]:
    """Run ids and paths among the positional targets: a hex word that is not a path is a run id."""
    runs: list[str] = []
    paths: list[str] = []
    for t in targets:
        (runs if _RUN.match(t.lower()) and not os.path.lexists(t) else paths).append(t)
    return runs, paths


def size_text(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def print_push(result: Any) -> None:
    for art in result.unavailable:
        print(f"not here   {art.path} ({art.hash[:19]}): not in the cache, and the path holds other bytes")
    print(
        f"pushed {result.pushed:,} object(s), {size_text(result.bytes)}; {result.already:,} already there"
        + (f"; {len(result.unavailable)} artifact(s) not available here" if result.unavailable else "")
        + f" (data remote '{result.remote}')"
    )


def print_fetch(result: Any) -> None:
    print(
        f"fetched {result.fetched:,} object(s), {size_text(result.bytes)}; {result.cached:,} already cached"
        f" (data remote '{result.remote}')"
    )


def print_pull(result: Any) -> None:
    fetched, placed = result.fetched, result.placed
    for path in placed.placed:
        print(f"placed     {path}")
    print(
        f"fetched {fetched.fetched:,} object(s), {size_text(fetched.bytes)}; placed {len(placed.placed)} path(s)"
        f" ({placed.files:,} file(s)); {len(placed.unchanged)} unchanged"
    )


def run(command: str, options: dict[str, Any]) -> int:
    """Run what :func:`parse` returned; errors propagate to main's handler."""
    from cmfgit.data import ops
    from cmfgit.data.selection import Query
    from cmfgit.data.transfer import DEFAULT_JOBS
    from cmfgit.errors import UsageError
    from cmfgit.repo import open_repo
    from cmfgit.views import print_json

    jobs = options.get("jobs")
    if jobs is not None and jobs < 1:
        raise UsageError("--jobs must be at least 1")
    runs, paths = split_targets(options["targets"])
    query = Query(
        runs=tuple(runs),
        pipelines=tuple(options.get("pipeline", ())),
        stages=tuple(options.get("stage", ())),
        since=options.get("since"),
        artifacts=tuple(options.get("artifact", ())),
        paths=tuple(paths),
        with_lineage=options.get("with_lineage", False),
    )
    repo = open_repo()
    remote = options.get("remote")
    result: Any
    if command == "push":
        result = ops.push(repo, query, remote, jobs or DEFAULT_JOBS)
        show = print_push
    elif command == "fetch":
        result = ops.fetch(repo, query, remote, jobs or DEFAULT_JOBS)
        show = print_fetch
    else:
        result = ops.pull(repo, query, remote, jobs or DEFAULT_JOBS, options.get("force", False))
        show = print_pull
    if options.get("as_json"):
        print_json(result.as_json())
    else:
        show(result)
    return 0
