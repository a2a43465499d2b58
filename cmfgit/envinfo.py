"""The software environment of a run: python, platform, installed packages.

The package set is identified by a hash of the sorted ``name-version`` of
every installed distribution. Listing the ``*.dist-info`` directories on
``sys.path`` gives that without importing ``importlib.metadata`` or running
``pip freeze`` (which is most of cmflib's 5 s per execution).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from functools import lru_cache

from blake3 import blake3

from cmfgit.environ import names
from cmfgit.redact import Redactor

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")


# What a command's own Python interpreter reports about itself (see interpreter_probe).
PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(*filter(None, sys.path), sep='\\n')"


@lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """Sorted ``name==version`` of the distributions importable here."""
    return packages_on(tuple(sys.path))


@lru_cache(maxsize=4)
def packages_on(path: tuple[str, ...]) -> tuple[str, ...]:
    """Sorted ``name==version`` of the distributions in the directories of ``path``."""
    found: set[str] = set()
    for entry in path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            for suffix in _SUFFIXES:
                if name.endswith(suffix):
                    stem = name[: -len(suffix)]
                    dist, _, version = stem.partition("-")
                    version = version.split("-py")[0]
                    found.add(f"{dist.lower().replace('_', '-')}=={version}")
    return tuple(sorted(found))


@lru_cache(maxsize=1)
def packages_hash() -> str:
    listing = "\n".join(installed_packages()).encode()
    return "blake3:" + blake3(listing).hexdigest()


@lru_cache(maxsize=1)
def platform_name() -> str:
    u = os.uname()
    return f"{u.sysname}-{u.release}-{u.machine}"


def python_version() -> str:
    v = sys.version_info
    return f"{v.major}.{v.minor}.{v.micro}"


@lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    """Patterns split into exact names, ``PREFIX*`` globs and other globs:
    the first two need no fnmatch (which compiles a regex per pattern)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    globs: list[str] = []
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            exact.add(pattern)
        elif pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
            prefixes.append(pattern[:-1])
        else:
            globs.append(pattern)
    return frozenset(exact), tuple(prefixes), tuple(globs)


# (patterns, the environment's variable names) -> the names recorded: a sweep
# records runs from one environment, so its names are matched once.
_recorded_names: dict[tuple[tuple[str, ...], tuple[bytes, ...]], list[str]] = {}


def recorded_vars(patterns: list[str], redactor: Redactor) -> dict[str, str]:
    """Environment variables matching ``patterns`` (globs, as fnmatchcase), redacted."""
    environ = os.environ
    present = names()
    memo_key = None if present is None else (tuple(patterns), present)
    found = None if memo_key is None else _recorded_names.get(memo_key)
    if found is None:
        exact, prefixes, globs = _matcher(tuple(patterns))
        found = sorted(
            k
            for k in environ  # names only: decoding every value costs an API run ~0.05 ms
            if k in exact or k.startswith(prefixes) or (globs and any(fnmatch.fnmatchcase(k, p) for p in globs))
        )
        if memo_key is not None:
            if len(_recorded_names) >= 16:
                _recorded_names.clear()
            _recorded_names[memo_key] = found
    return {k: redactor.value(k, environ[k]) for k in found}


def parse_probe(output: str) -> tuple[str, tuple[str, ...]] | None:
    """(version, sys.path) from what :data:`PROBE` printed; None if it is not that."""
    lines = output.splitlines()
    if not lines or not all(part.isdigit() for part in lines[0].split(".")) or lines[0].count(".") != 2:
        return None
    return lines[0], tuple(lines[1:])


def environment(
    patterns: list[str],
    redactor: Redactor,
    executable: str | None = None,
    interpreter: tuple[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The run's environment. ``interpreter`` is (version, sys.path) of the Python
    the command ran under when that is not cmfgit's own (log-run -- python ...)."""
    if interpreter is None:
        python, packages = python_version(), packages_hash()
    else:
        listing = "\n".join(packages_on(interpreter[1])).encode()
        python, packages = interpreter[0], "blake3:" + blake3(listing).hexdigest()
    env: dict[str, Any] = {
        "python": python,
        "platform": platform_name(),
        "packages": packages,
        "vars": recorded_vars(patterns, redactor),
    }
    if executable:
        env["executable"] = executable
    return env
