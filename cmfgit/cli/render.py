"""Output helpers shared by the commands: JSON for scripts, rich for people
(defined in ``cmfgit/views.py``, which the typer-free fast path shares)."""

from __future__ import annotations

from rich.console import Console

from cmfgit.views import console, fmt_mapping, fmt_time, fmt_value, print_json, short

__all__ = ["console", "err_console", "fmt_mapping", "fmt_time", "fmt_value", "print_json", "short"]


def err_console() -> Console:
    return Console(stderr=True, highlight=False)
