"""What the read commands print (log, show, lineage, diff, artifacts, pipelines), and pull; their output helpers.

Plain functions without typer: the typer commands in ``cli/`` call them, and so
does the fast path (``fastread.py``) that runs the common read commands without
importing typer and pydantic (~0.25 s of start-up). rich is imported only to draw.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from cmfgit.index import Scope
    from cmfgit.query import CmfQuery
    from cmfgit.repo import Repo


def console() -> Console:
    """stdout for people. Piped into a file or another program, tables keep their
    natural width instead of wrapping at 80 columns."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=False)
    return Console(highlight=False, soft_wrap=False, width=100_000, no_color=True)


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


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that reads digit runs as numbers: p_2 before p_10."""
    import re

    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def fmt_mapping(values: dict[str, Any]) -> str:
    """Every ``key=value``, keys in natural order: nothing is hidden (a narrow
    terminal wraps between pairs, never inside one)."""
    return " ".join(f"{k}={fmt_value(v)}" for k, v in sorted(values.items(), key=lambda kv: natural_key(kv[0])))


def print_table(
    headers: list[str],
    rows: list[list[str]],
    *,
    keep: int = 1,
    whole: frozenset[int] = frozenset(),
    label_above: bool = False,
) -> None:
    """Columns that never cut an id, a hash, a path or a time in two.

    A cell wraps only between words, and each column is at least as wide as
    its longest word; the columns in ``whole`` (ids, times) never wrap. When
    the terminal is too narrow for all that, columns move out of the table
    from the right (never the first ``keep``) and are printed under each row
    as ``name: value`` lines; with ``label_above``, the first column (a row's
    label) is then printed on a line of its own above the row. Cells may
    hold rich markup.
    """
    from rich.text import Text

    out = console()
    heads = [Text(h, style="bold") for h in headers]
    cells = [[Text.from_markup(c) for c in row] for row in rows]

    def narrowest(i: int) -> int:
        longest = max((len(w) for w in heads[i].plain.split()), default=0)
        for row in cells:
            if i in whole:
                size = max(len(line) for line in row[i].plain.split("\n"))
            else:
                size = max((len(w) for w in row[i].plain.split()), default=0)
            longest = max(longest, size)
        return max(longest, 1)

    def widest(i: int) -> int:
        return max(1, len(heads[i].plain), *(len(line) for row in cells for line in row[i].plain.split("\n")))

    def room(columns: list[int], indent: int) -> int:
        return out.width - indent - sum(low[i] for i in columns) - 2 * (len(columns) - 1)

    low = [narrowest(i) for i in range(len(headers))]
    high = [max(lo, widest(i)) for i, lo in enumerate(low)]
    table, indent = list(range(len(headers))), 0
    while len(table) > keep and room(table, 0) < 0:
        table.pop()
    folded = list(range(len(table), len(headers)))
    if label_above and room(table, 0) < 0 and len(table) > 1:
        table, indent = table[1:], 2
    widths = {i: low[i] for i in table}
    spare = room(table, indent)
    for i in table:  # room left: to the columns from the left, up to their natural width
        extra = max(0, min(spare, high[i] - widths[i]))
        widths[i] += extra
        spare -= extra

    def emit(row: list[Text]) -> None:
        if indent and row[0].plain.strip():
            out.print(row[0], soft_wrap=True)
        wrapped = [list(row[i].wrap(out, widths[i], overflow="fold")) for i in table]
        for n in range(max(len(w) for w in wrapped)):
            line = Text(" " * indent)
            for k, (i, parts) in enumerate(zip(table, wrapped)):
                part = parts[n] if n < len(parts) else Text()
                part.rstrip()
                if k:
                    line.append("  ")
                line.append_text(part)
                line.append(" " * (widths[i] - part.cell_len))
            line.rstrip()
            out.print(line, soft_wrap=True)
        if folded:
            label = max(len(headers[i]) for i in folded) + 4
            for i in folded:
                if not row[i].plain.strip():
                    continue
                for n, part in enumerate(row[i].wrap(out, max(out.width - label, 1), overflow="fold")):
                    part.rstrip()
                    head = f"  {headers[i]}: " if n == 0 else ""
                    out.print(Text(head.ljust(label)).append_text(part), soft_wrap=True)

    saved, folded = folded, []
    emit(heads)
    folded = saved
    for row in cells:
        emit(row)


def fmt_time(ts: str | None) -> str:
    return (ts or "")[:19].replace("T", " ")


def _query(scope: Scope | None, repo: Repo | None = None) -> CmfQuery:
    """The query over ``scope`` for a read command; it warns itself (see :func:`_warn`)."""
    from cmfgit.query import CmfQuery

    return CmfQuery(repo, scope=scope, warn=False)


def _warn(q: CmfQuery) -> None:
    """One line on stderr, every time, when records of the scope could not be read."""
    bad = q.unreadable()
    if bad:
        from cmfgit.query import unreadable_note

        print(f"cmfgit: warning: {unreadable_note(bad)}", file=sys.stderr)


def _add_commits(q: CmfQuery, objects: list[dict[str, Any]]) -> None:
    """Each object's ``metadata_commit``: the commit that first brought it into the branch, or pending."""
    from cmfgit import recordcommits

    found = recordcommits.describe(q.repo, q.scope, [obj["id"] for obj in objects])
    for obj in objects:
        obj["metadata_commit"] = found[obj["id"]]


def log(
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    number: int | None = None,
    where: str | None = None,
    sort: str | None = None,
    since: str | None = None,
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit log``: executions as a table, or as a JSON array."""
    first, repo = None, None
    if (scope is None or scope.kind == "checkout") and where is None and sort is None and number:
        from cmfgit import firstread
        from cmfgit.repo import open_read_repo

        # No index yet (a fresh clone): the newest packs answer, the full index is built in the background.
        repo = open_read_repo(None)
        first = firstread.log_query(repo, number, pipeline=pipeline, stage=stage, since=since)
    with first or _query(scope, repo) as q:
        found = q.execution_records(where, pipeline=pipeline, stage=stage, sort=sort, limit=number, since=since)
        objects = q.as_objects(found)
        if as_json:
            _add_commits(q, objects)
        _warn(q)
    if as_json:
        print_json(objects)
        return
    from rich.markup import escape

    tagged = any(obj["tags"] for obj in objects)
    headers = ["id", "started (UTC)", "pipeline/stage", "exit", "params", "metrics"] + (["tags"] if tagged else [])
    rows = []
    for obj in objects:
        code = obj.get("exit_code")
        rows.append(
            [
                short(obj["id"]),
                fmt_time(obj.get("started_at")),
                escape(f"{obj.get('pipeline')}/{obj.get('stage')}"),
                "-" if code is None else str(code),
                escape(fmt_mapping(obj.get("params") or {})),
                escape(fmt_mapping(obj.get("metrics") or {})),
                *((escape(fmt_mapping(obj["tags"])),) if tagged else ()),
            ]
        )
    if objects:
        print_table(headers, rows, keep=4, whole=frozenset({0, 1, 3}))
    elif where or pipeline or stage or since:
        console().print("no executions match")
    else:
        console().print("no executions recorded yet")


def show(record_id: str, *, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit show``: one record in full (and an execution's current tags)."""
    from cmfgit import canonical

    first, repo = None, None
    if scope is None or scope.kind == "checkout":
        from cmfgit import firstread
        from cmfgit.repo import open_read_repo

        # No index yet (a fresh clone): the records of that id, and every tag and retraction, answer.
        repo = open_read_repo(None)
        first = firstread.show_query(repo, record_id)
    with first or _query(scope, repo) as q:
        rid, record = q.record(record_id)
        obj = q.as_object(rid, record)
        _add_commits(q, [obj])
        _warn(q)
    if as_json:
        print_json(obj)
        return
    print(f"id: {rid}")
    if obj.get("tags"):
        print(f"tags: {fmt_mapping(obj['tags'])}")
    recorded = obj["metadata_commit"]
    if recorded["commit"] is not None:
        print(f"metadata commit: {recorded['commit']}")
    elif recorded["pending"]:
        print("metadata commit: pending (written, not committed yet)")
    print(canonical.dump(record).decode("utf-8"), end="")


def lineage(
    target: str,
    *,
    up: bool = False,
    down: bool = False,
    both: bool = False,
    depth: int | None = None,
    fmt: str = "tree",
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit lineage``: a rich tree, JSON, Mermaid or DOT."""
    from cmfgit import lineage as lin
    from cmfgit.errors import UsageError

    if as_json:
        fmt = "json"
    if fmt not in lin.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(lin.FORMATS)}")
    chosen = [name for name, on in (("up", up), ("down", down), ("both", both)) if on]
    if len(chosen) > 1:
        raise UsageError("choose one of --up, --down, --both")
    direction = chosen[0] if chosen else "up"
    first = None
    if (scope is None or scope.kind == "checkout") and direction == "up":
        from cmfgit import firstread
        from cmfgit.repo import open_read_repo

        # No index yet (a fresh clone): the records the upward walk reaches, found by their hashes, answer.
        first = firstread.lineage_query(open_read_repo(None), target)
    with first or _query(scope) as q:
        roots, understood = lin.resolve_target(q, target)
        result, graph = q.lineage(roots, direction, depth)
        _warn(q)
        if fmt == "json":
            document = lin.to_json(result, graph)
            _add_commits(q, [n for n in document["nodes"] if n["kind"] == "execution"])
    if fmt == "json":
        print_json(document)
    elif fmt == "mermaid":
        print(lin.to_mermaid(result, graph), end="")
    elif fmt == "dot":
        print(lin.to_dot(result, graph), end="")
    else:
        out = console()
        out.print(f"[dim]{understood}[/]")
        out.print(lin.to_tree(result, graph))


def diff(a: str, b: str, *, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit diff``: two executions side by side."""
    from cmfgit.query import diff_executions

    with _query(scope) as q:
        sides = {"a": q.execution(a), "b": q.execution(b)}
        _warn(q)
    result = diff_executions(sides["a"], sides["b"])
    # Paths a side recorded without a hash: an output that was not created.
    missing = {
        side: {str(i.get("path")) for key in ("inputs", "outputs") for i in rec.get(key) or () if not i.get("hash")}
        for side, rec in sides.items()
    }
    if as_json:
        print_json(result)
        return
    from rich.markup import escape

    rows: list[list[str]] = []

    def mark(changed: bool, text: str) -> str:
        return f"[yellow]{escape(text)}[/]" if changed else escape(text)

    for key in ("pipeline", "stage", "started_at", "exit_code", "site"):
        va, vb = result["a"][key], result["b"][key]
        rows.append([key, mark(va != vb, fmt_value(va)), mark(va != vb, fmt_value(vb))])
    code = result["code"]
    rows.append(
        [
            "code",
            mark(code["changed"], _code(code["a"])),
            mark(code["changed"], _code(code["b"])),
        ]
    )
    for section in ("params", "metrics"):
        for row in sorted(result[section], key=lambda r: natural_key(r["key"])):
            rows.append(
                [
                    escape(f"{section}.{row['key']}"),
                    mark(row["changed"], _opt(row["a"])),
                    mark(row["changed"], _opt(row["b"])),
                ]
            )

    def art(side: str, row: dict[str, Any]) -> str:
        if row[side]:
            return str(row[side])[:19]
        return "(missing)" if row["path"] in missing[side] else "-"

    for section in ("inputs", "outputs"):
        for row in result[section]:
            rows.append(
                [
                    escape(f"{section[:-1]} {row['path']}"),
                    mark(row["changed"], art("a", row)),
                    mark(row["changed"], art("b", row)),
                ]
            )
    print_table(["", f"A {short(result['a']['id'])}", f"B {short(result['b']['id'])}"], rows, keep=3, label_above=True)


def _code(side: dict[str, Any]) -> str:
    commit = (side.get("commit") or "-")[:12]
    return commit + (" (dirty)" if side.get("dirty") else "")


def _opt(value: Any) -> str:
    return "-" if value is None else fmt_value(value)


def artifacts(
    *,
    type_: str | None = None,
    pipeline: str | None = None,
    number: int | None = None,
    as_json: bool = False,
    scope: Scope | None = None,
) -> None:
    """``cmfgit artifacts``: artifacts, most recently used first."""
    with _query(scope) as q:
        found = q.artifacts(type=type_, pipeline=pipeline, limit=number)
        _warn(q)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("no artifacts recorded")
        return
    from rich.markup import escape

    tagged = any(art["tags"] for art in found)
    headers = ["hash", "type", "path", "made by", "used by", "last used (UTC)"] + (["tags"] if tagged else [])
    rows = []
    for art in found:
        paths = art["paths"]
        rows.append(
            [
                art["hash"][:19],
                escape(art["type"] or "-"),
                escape((paths[0] if paths else "-") + (f" +{len(paths) - 1}" if len(paths) > 1 else "")),
                str(len(art["producers"])),
                str(len(art["consumers"])),
                fmt_time(art["last_seen"]),
                *((escape(fmt_mapping(art["tags"])),) if tagged else ()),
            ]
        )
    print_table(headers, rows, keep=1, whole=frozenset({0, 5}))


def pipelines(*, as_json: bool = False, scope: Scope | None = None) -> None:
    """``cmfgit pipelines``: pipelines and stages with counts and the last run."""
    with _query(scope) as q:
        found = q.pipelines()
        _warn(q)
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("no executions recorded yet")
        return
    from rich.markup import escape

    rows = []
    for p in found:
        rows.append(
            [f"[bold]{escape(p['pipeline'])}[/]", str(p["executions"]), str(p["failed"]), fmt_time(p["last_run"])]
        )
        for s in p["stages"]:
            rows.append([f"  {escape(s['stage'])}", str(s["executions"]), str(s["failed"]), fmt_time(s["last_run"])])
    print_table(["pipeline / stage", "executions", "failed", "last run (UTC)"], rows, keep=1, whole=frozenset({0, 3}))


def pending(what: str) -> str:
    """'3 record(s)' -> '3 pending record(s)'; 'settings' -> 'pending settings'."""
    return f"{what.split(' ', 1)[0]} pending {what.split(' ', 1)[1]}" if what[:1].isdigit() else f"pending {what}"


def pull(
    remote: str | None = None,
    pipeline: list[str] | None = None,
    artifact: list[str] | None = None,
    since: str | None = None,
    with_lineage: bool = False,
    stage: list[str] | None = None,
    tag: list[str] | None = None,
    run: list[str] | None = None,
) -> Any:
    """``cmfgit pull`` without ``--with-data`` (the typer command adds the data); returns
    the selection (a ``localview.Selection``)."""
    from cmfgit import localview, sync
    from cmfgit.repo import open_repo

    repo = open_repo()
    selection = localview.Selection(
        pipelines=tuple(pipeline or ()),
        artifacts=tuple(localview.artifact_key(repo, a) for a in artifact or ()),
        since=localview.parse_since(since) if since is not None else None,
        with_lineage=with_lineage,
        stages=tuple(stage or ()),
        tags=localview.parse_tags(tag or ()),
        runs=tuple(run_prefix(r) for r in run or ()),
    )
    result = sync.pull(repo, selection, remote)
    for item in result.configured:
        print(f"configured {item}")
    if result.branch is not None:
        if result.commit:
            print(f"committed  {pending(result.what)} before merging")
        state = "merged new commits" if result.merged else "up to date"
        print(f"branch     {result.branch}: {state}")
    if result.global_commit is None:
        print(f"global     {result.remote} has no global view yet (run 'cmfgit push' at a site)")
        return selection
    what = "all selected" if selection.everything else f"{result.selected} match"
    sites = f" (the union of cmf/global and {result.view.sites} site ref(s))" if result.view is not None else ""
    print(f"global     {result.remote}/cmf/global: {result.view_records} record(s), {what}{sites}")
    for problem in result.problems:
        print(f"cmfgit: {problem}")
    written = " (pending: commit them, or run 'cmfgit push')" if result.written else ""
    print(f"local view {result.written} new record(s) written{written}")
    return selection


def run_prefix(text: str) -> str:
    """A ``--run`` word: a run id or a prefix of one, lower-cased."""
    from cmfgit.errors import UsageError

    prefix = text.strip().lower()
    if not (4 <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix)):
        raise UsageError(f"--run '{text}' is not a run id or a prefix of one (4 to 64 hex digits)")
    return prefix
