"""How the git hooks and the merge driver find cmfgit: shell text, one declaration.

Git runs them long after ``cmfgit init``, maybe after the virtualenv that ran
``init`` was moved, recreated or deleted. As pre-commit's hook template does,
the shell tries, in order:

1. the interpreter that installed them (``sys.executable`` then), if it still
   exists and cmfgit's package is still where it was;
2. ``cmfgit`` on ``PATH``;
3. ``python3 -m cmfgit``, if that ``python3`` can import cmfgit and its
   dependencies;

and otherwise runs what the caller says (a clear message). Nothing here runs
at hook time: this module only writes the text (it is imported by ``init``
and ``hooks`` when they install or compare it).
"""

from __future__ import annotations

import os
import sys

import cmfgit

_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")
# The probe of step 3: cmfgit and what every hook or driver run needs.
_PROBE = "python3 -c 'import cmfgit.main, blake3, yaml' >/dev/null 2>&1"


def shell_quote(arg: str) -> str:
    """shlex.quote, without importing shlex (log-run compares the driver on every run)."""
    if arg and _SHELL_SAFE.issuperset(arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def package_file() -> str:
    """A file of the cmfgit package that runs now: gone when its install is gone."""
    return os.path.abspath(cmfgit.__file__ or "")


def variables(sep: str = "; ") -> str:
    """``PY=...; MOD=...``: the interpreter and package of this install."""
    return f"PY={shell_quote(sys.executable)}{sep}MOD={shell_quote(package_file())}"


def one_line(args: str, otherwise: str) -> str:
    """The search as one shell line (for ``merge.cmfgit.driver``): exec
    ``cmfgit ARGS`` with the first interpreter that works, else run ``otherwise``."""
    return (
        f'{variables()}; if [ -x "$PY" ] && [ -f "$MOD" ]; then exec "$PY" -m cmfgit {args}; '
        f"elif command -v cmfgit >/dev/null 2>&1; then exec cmfgit {args}; "
        f"elif {_PROBE}; then exec python3 -m cmfgit {args}; fi; {otherwise}"
    )


def block(args: str) -> str:
    """The search as lines of a script (for the hooks); falls through when nothing works."""
    return (
        f'if [ -x "$PY" ] && [ -f "$MOD" ]; then\n    exec "$PY" -m cmfgit {args}\n'
        f"elif command -v cmfgit >/dev/null 2>&1; then\n    exec cmfgit {args}\n"
        f"elif {_PROBE}; then\n    exec python3 -m cmfgit {args}\nfi\n"
    )


def recorded_python(value: str) -> str | None:
    """The interpreter a line written by :func:`one_line` names (None: not ours)."""
    if not value.startswith("PY="):
        return None
    import shlex

    try:
        words = shlex.split(value.split("; MOD=", 1)[0])
    except ValueError:
        return None
    return words[0][3:] if len(words) == 1 and words[0].startswith("PY=") else None
