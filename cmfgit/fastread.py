"""The read commands (log, show, lineage, diff, artifacts, pipelines), and pull, without typer.

typer imports pydantic, which costs a read command about a quarter of a second
before it has read anything. Well-formed invocations of the read commands are
parsed here instead and call the same functions as the typer commands
(``views.py``). Anything else (``--help``, an unknown or malformed
option, a bad number) returns None from :func:`parse`, and the typer command
line handles it, so help and error messages have one source.

The options are those of ``cli/records.py``, ``cli/query.py`` and (pull)
``cli/sync.py``; a no-op pull then takes a fraction of a second;
``tests/test_fastread.py`` runs both paths on the same arguments and compares
their output.
"""

from __future__ import annotations

from typing import Any

# option -> keyword, for the options that take a value and the flags, per command
_SCOPE_VALUES = {"--ref": "ref", "--remote": "remote"}
_SCOPE_FLAGS = {"--json": "as_json", "--all-branches": "all_branches", "--global": "global_"}
_VALUES = {
    "log": {
        "-P": "pipeline",
        "--pipeline": "pipeline",
        "-s": "stage",
        "--stage": "stage",
        "-n": "number",
        "--max-count": "number",
        "-w": "where",
        "--where": "where",
        "--sort": "sort",
        "--since": "since",
        **_SCOPE_VALUES,
    },
    "show": dict(_SCOPE_VALUES),
    "lineage": {"--depth": "depth", "--format": "fmt", "-f": "fmt", **_SCOPE_VALUES},
    "diff": dict(_SCOPE_VALUES),
    "artifacts": {
        "--type": "type_",
        "-t": "type_",
        "--pipeline": "pipeline",
        "-P": "pipeline",
        "-n": "number",
        "--max-count": "number",
        **_SCOPE_VALUES,
    },
    "pipelines": dict(_SCOPE_VALUES),
}
_FLAGS = {
    "lineage": {"--up": "up", "--down": "down", "--both": "both", **_SCOPE_FLAGS},
}
_POSITIONALS = {"log": [], "show": ["record_id"], "lineage": ["target"], "diff": ["a", "b"]}
COMMANDS = tuple(_VALUES)


# pull (cli/sync.py): repeatable options, an optional remote; --with-data is left to typer.
_PULL_VALUES = {
    "-P": "pipeline",
    "--pipeline": "pipeline",
    "-a": "artifact",
    "--artifact": "artifact",
    "--since": "since",
    "-s": "stage",
    "--stage": "stage",
    "-t": "tag",
    "--tag": "tag",
    "--run": "run",
}
_PULL_LISTS = frozenset({"pipeline", "artifact", "stage", "tag", "run"})


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(command, keyword arguments) for a plain, valid read command
    line, read as click reads it; None when typer should handle it."""
    if args and args[0] == "pull":
        return _parse_pull(args[1:])
    if not args or args[0] not in _VALUES:
        return None
    command, rest = args[0], args[1:]
    values, flags = _VALUES[command], _FLAGS.get(command, _SCOPE_FLAGS)
    found: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg == "--":
            positional += rest[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in flags and not eq:
                found[flags[name]] = True
                continue
            if name not in values:
                return None
            if not eq:
                if i >= len(rest):
                    return None
                value, i = rest[i], i + 1
            found[values[name]] = value
        elif arg.startswith("-") and len(arg) > 1:
            name = arg[:2]
            if name not in values:
                return None  # -h, combined flags, unknown: typer says what is wrong
            if len(arg) > 2:
                value = arg[2:]
            elif i < len(rest):
                value, i = rest[i], i + 1
            else:
                return None
            found[values[name]] = value
        else:
            positional.append(arg)
    names = _POSITIONALS.get(command, [])
    if len(positional) != len(names):
        return None
    for key in ("number", "depth"):
        if key in found:
            try:
                found[key] = int(found[key])
            except ValueError:
                return None
    if found.get("depth", 0) < 0 or (command == "artifacts" and found.get("number", 0) < 0):
        return None  # typer's min=0 says so (log's own check words it for log)
    found.update(zip(names, positional))
    return command, found


def _parse_pull(rest: list[str]) -> tuple[str, dict[str, Any]] | None:
    found: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg == "--":
            positional += rest[i:]
            break
        if arg == "--with-lineage":
            found["with_lineage"] = True
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg[:2], "", arg[2:]
            eq = "=" if value else ""
        else:
            positional.append(arg)
            continue
        if name not in _PULL_VALUES:
            return None  # --with-data, --help, unknown: typer
        if not eq:
            if i >= len(rest):
                return None
            value, i = rest[i], i + 1
        key = _PULL_VALUES[name]
        if key in _PULL_LISTS:
            found.setdefault(key, []).append(value)
        else:
            found[key] = value
    if len(positional) > 1:
        return None
    if positional:
        found["remote"] = positional[0]
    return "pull", found


def run(command: str, options: dict[str, Any]) -> int:
    """Run what :func:`parse` returned; errors propagate to main's handler."""
    from cmfgit import views

    if command == "pull":
        views.pull(**options)
        return 0
    from cmfgit.query import scope_of

    scope = scope_of(
        options.pop("ref", None),
        options.pop("all_branches", False),
        options.pop("global_", False),
        options.pop("remote", None),
    )
    view = getattr(views, command)
    positional = [options.pop(name) for name in _POSITIONALS.get(command, [])]
    view(*positional, scope=scope, **options)
    return 0
