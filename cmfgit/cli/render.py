"""Output helpers shared by the commands: JSON for scripts, rich for people."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console


def console() -> Console:
    """stdout for people. Piped into a file or another program, tables keep their
    natural width instead of wrapping at 80 columns."""
    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=False)
    return Console(highlight=False, soft_wrap=False, width=100_000, no_color=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Stable JSON on stdout: sorted keys, two-space indent, UTF-8."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def short(rid: str) -> str:
    return rid[:12]


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fmt_mapping(values: dict[str, Any], limit: int = 4) -> str:
    items = [f"{k}={fmt_value(v)}" for k, v in sorted(values.items())]
    if len(items) > limit:
        items = items[:limit] + [f"+{len(items) - limit}"]
    return " ".join(items)


def fmt_time(ts: str | None) -> str:
    return (ts or "")[:19].replace("T", " ")
