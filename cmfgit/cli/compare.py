"""``cmfgit compare RUN RUN...``: N executions side by side, in the terminal, as Markdown, CSV or JSON.

The data is :func:`cmfgit.compare.compare` (the UI's compare page reads the same).
Values come from records, which anyone can write: the terminal and Markdown show
control characters as escapes (``\\x1b``) and never read a value as markup.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from cmfgit.cli import app
from cmfgit.cli.query import AllBranchesOpt, GlobalOpt, JsonOpt, RefOpt, RemoteOpt
from cmfgit.errors import UsageError

# A row of the output: (section, key, values per run, delta per run, changed, highlight).
Row = tuple[str, str, list[Any], list[Any], bool, bool]


@app.command()
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(metavar="RUN", help="two or more execution ids (prefixes), @N or STAGE@N"),
    ],
    changed_only: Annotated[
        bool, typer.Option("--only-changed", help="only the params and metrics whose values differ")
    ] = False,
    md: Annotated[bool, typer.Option("--md", help="print a GitHub Markdown table")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="print CSV (RFC 4180): a row per field, a column per run")
    ] = False,
    as_json: JsonOpt = False,
    ref: RefOpt = None,
    all_branches: AllBranchesOpt = False,
    global_: GlobalOpt = False,
    remote: RemoteOpt = None,
) -> None:
    """Compare executions side by side: params and metrics with deltas against the first run.

    \b
    Examples:
      cmfgit compare @1 @2 @3
      cmfgit compare train@1 train@2 --only-changed --md
    """
    from cmfgit import compare as core
    from cmfgit import views
    from cmfgit.query import CmfQuery, scope_of

    chosen = [name for name, on in (("--md", md), ("--csv", as_csv), ("--json", as_json)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one output format: {' or '.join(chosen)}")
    with CmfQuery(scope=scope_of(ref, all_branches, global_, remote), warn=False) as q:
        table = core.compare(q, runs)
        short = core.unique_prefixes(q, [r["id"] for r in table["runs"]])
        views._warn(q)
    if changed_only:
        table = core.only_changed(table)
    if as_json:
        views.print_json(table)
    elif md:
        sys.stdout.write(markdown(table, short))
    elif as_csv:
        sys.stdout.write(to_csv(table))
    else:
        terminal(table, short)


def rows(table: dict[str, Any]) -> list[Row]:
    """The lines of every format: each run's summary, then params, then metrics."""
    runs = table["runs"]
    none = [None] * len(runs)

    def same(values: list[Any]) -> bool:
        return all(v == values[0] and type(v) is type(values[0]) for v in values)

    out: list[Row] = []
    for key, highlight in (
        ("pipeline", True),
        ("stage", True),
        ("started_at", False),
        ("duration", False),
        ("status", True),
        ("exit_code", True),
        ("site", True),
    ):
        values = [r[key] for r in runs]
        out.append(("run", key, values, none, not same(values), highlight))
    codes = [r["code"] for r in runs]
    for key in ("commit", "dirty"):
        values = [c[key] for c in codes]
        out.append(("run", key, values, none, not same(values), True))
    for section in ("params", "metrics"):
        for row in table[section]:
            out.append((section, row["key"], row["values"], row["delta"], row["changed"], True))
    return out


# -- text -------------------------------------------------------------------------------------


def printable(text: str) -> str:
    """``text`` with control characters (and bidirectional overrides) as visible escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{code:02x}"))
        elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or code in (0x200E, 0x200F, 0x061C):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def show_value(value: Any) -> str:
    """A value for people: floats to 6 significant digits, JSON for lists and mappings, '-' for none."""
    from cmfgit.views import fmt_value

    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return printable(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return printable(fmt_value(value))


def show_delta(delta: Any) -> str:
    """'' for no delta or none at all, else the signed difference: '+0.2', '-3'."""
    if delta is None or delta == 0:
        return ""
    return f"{delta:+.6g}" if isinstance(delta, float) else f"{delta:+d}"


def _label(section: str, key: str) -> str:
    if section == "run":
        return {"started_at": "started (UTC)", "exit_code": "exit"}.get(key, key)
    return f"{section}.{key}"


def _cell(section: str, key: str, value: Any, delta: Any) -> str:
    if section == "run":
        from cmfgit.views import fmt_time

        if key == "started_at":
            return fmt_time(value)
        if key == "duration":
            return "-" if value is None else _duration(value)
        if key == "commit":
            return "-" if value is None else str(value)[:12]
        if key == "dirty" and value is None:
            return "-"
    text = show_value(value)
    change = show_delta(delta)
    return f"{text} ({change})" if change else text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- the terminal -----------------------------------------------------------------------------


def terminal(table: dict[str, Any], short: Sequence[str]) -> None:
    """Runs as columns, fields as rows; changed rows highlighted. When the runs do not fit
    the terminal's width, they are printed in blocks, each beside the first run again,
    so that no id or number is ever cut."""
    from rich.markup import escape

    from cmfgit.views import console, print_table

    lines = rows(table)
    labels = [_label(section, key) for section, key, *_ in lines]
    cells = [[_cell(section, key, v, d) for v, d in zip(values, delta)] for section, key, values, delta, *_ in lines]

    def narrowest(texts: Sequence[str]) -> int:
        return max((len(word) for text in texts for word in text.split()), default=1)

    label_width = narrowest(labels)
    widths = [max(len(short[i]), narrowest([row[i] for row in cells])) for i in range(len(short))]
    width = console().width
    room = width - label_width - 2
    if widths[0] + 2 + max(widths[1:]) > room:  # not even two runs beside the names: names go above their row
        room = width - 2
    groups: list[list[int]] = []
    for i in range(1, len(short)):
        used = widths[0] + sum(widths[j] + 2 for j in groups[-1][1:]) if groups else 0
        if groups and used + 2 + widths[i] <= room:
            groups[-1].append(i)
        else:
            groups.append([0, i])
    for n, group in enumerate(groups):
        if n:
            console().print()
        body = []
        for (section, key, _, _, changed, highlight), label, row in zip(lines, labels, cells):
            texts = [label, *(row[i] for i in group)]
            styles = ["yellow" if changed and highlight else ""] * len(texts)
            if (section, key) == ("run", "status"):  # failed runs stand out
                styles = ["bold red" if t == "failed" else st for t, st in zip(texts, styles)]
            body.append(
                [f"[{st}]{escape(printable(t))}[/]" if st else escape(printable(t)) for t, st in zip(texts, styles)]
            )
        heads = [f"{len(short)} runs" if n == 0 else "", *(short[i] for i in group)]
        print_table(heads, body, keep=len(heads), label_above=True)


# -- Markdown and CSV -------------------------------------------------------------------------

_MD_SPECIAL = set("\\`*_[]<>|&~#")


def md_text(text: str) -> str:
    """Text safe in a GitHub Markdown table cell: markup characters backslash-escaped."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in printable(text))


def markdown(table: dict[str, Any], short: Sequence[str]) -> str:
    """A GitHub Markdown table: a column per run, changed rows' names in bold."""
    lines = ["| | " + " | ".join(f"`{s}`" for s in short) + " |", "|---" * (len(short) + 1) + "|"]
    for section, key, values, delta, changed, highlight in rows(table):
        name = md_text(_label(section, key))
        name = f"**{name}**" if changed and highlight else name
        cells = [md_text(_cell(section, key, v, d)) for v, d in zip(values, delta)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    # Tabs, newlines and carriage returns stay (the csv module quotes them); other controls become escapes.
    return "".join(ch if ch in "\t\n\r" else printable(ch) for ch in text)


def to_csv(table: dict[str, Any]) -> str:
    """RFC 4180 CSV: ``section,key,changed``, a value column per run (named by its full id),
    then a delta column per run after the first."""
    ids = [r["id"] for r in table["runs"]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["section", "key", "changed", *ids, *(f"delta {rid}" for rid in ids[1:])])
    for section, key, values, delta, changed, _ in rows(table):
        writer.writerow(
            [section, _csv_value(key), "true" if changed else "false"]
            + [_csv_value(v) for v in values]
            + [_csv_value(d) for d in delta[1:]]
        )
    return buf.getvalue()
