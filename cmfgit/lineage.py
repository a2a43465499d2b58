"""``cmfgit lineage``: finding the target, and drawing its lineage.

A target is a path in the working tree (its current content is hashed; if
that exact content was never recorded, every version recorded at the path is
used), an artifact hash or prefix (``blake3:…``, ``md5:…`` or bare hex), or an
execution id prefix. The lineage itself comes from ``CmfQuery.lineage`` (the
index's recursive CTEs feeding ``graph.Graph``); this module turns it into
JSON, Mermaid, DOT or a rich tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cmfgit.errors import CmfgitError, ObjectNotFound, PathError, UsageError
from cmfgit.graph import Edge, Graph, Lineage, Node
from cmfgit.query import CmfQuery, relative_run

FORMATS = ("tree", "json", "mermaid", "dot")


def resolve_target(q: CmfQuery, target: str, cwd: Path | None = None) -> tuple[list[Node], str]:
    """The root nodes ``target`` names, and a note on how it was understood."""
    cwd = cwd or Path.cwd()
    text = target.strip()
    if not text:
        raise UsageError("lineage needs a target: a path, an artifact hash or an execution id")
    full = cwd / text
    if os.path.lexists(full) and not text.lower().startswith(("blake3:", "md5:")):
        rel = q.repo.relpath(text, cwd)
        from cmfgit.hashing import Hasher

        with Hasher(q.repo.state_dir / "hashcache.sqlite", progress=False) as hasher:
            try:
                digest = hasher.hash_path(full, rel)
            except PathError:
                digest = None
        if digest is not None and q._hash_prefix(digest.hash, quiet=True):
            return [Node("artifact", digest.hash)], f"{rel} (current content, {digest.hash[:19]})"
        try:
            hashes = q.resolve_artifacts(rel)
        except CmfgitError:
            raise CmfgitError(f"{rel}: no execution recorded this file (its current content or any version)") from None
        return [Node("artifact", h) for h in hashes], f"{rel} (every recorded version: {len(hashes)})"
    if relative_run(text) is not None:
        rid = q.resolve_record(text)
        return [Node("execution", rid)], f"execution {rid[:12]} ({text})"
    low = text.lower()
    if low.startswith(("blake3:", "md5:")):
        return [Node("artifact", h) for h in q.resolve_artifacts(low)], low
    if len(low) >= 4 and all(c in "0123456789abcdef" for c in low):
        execs: list[str] = []
        try:
            execs = [q.resolve_record(low, executions_only=True)]
        except ObjectNotFound:
            pass
        arts = q._hash_prefix(low, quiet=True)
        if execs and arts:
            raise CmfgitError(f"'{text}' is both an execution id and an artifact hash prefix; give more digits")
        if execs:
            return [Node("execution", execs[0])], f"execution {execs[0][:12]}"
        if arts:
            return [Node("artifact", h) for h in arts], arts[0]
    # A path that is no longer in the working tree, as recorded.
    rel = text
    try:
        rel = q.repo.relpath(text, cwd)
    except PathError:
        pass
    try:
        hashes = q.resolve_artifacts(rel)
    except CmfgitError:
        raise CmfgitError(f"no artifact, path or execution matches '{target}'") from None
    return [Node("artifact", h) for h in hashes], f"{rel} (every recorded version: {len(hashes)})"


# -- JSON --------------------------------------------------------------------------------


def node_id(node: Node) -> str:
    """Execution ids are 64 hex digits; artifact ids are their hash (``blake3:<hex>``)."""
    return node.key


def to_json(lineage: Lineage, graph: Graph) -> dict[str, Any]:
    """The stable ``lineage --json`` object (docs/json.md)."""
    nodes: list[dict[str, Any]] = []
    for node in lineage.nodes:
        level = lineage.levels[node]
        if node.kind == "execution":
            s = graph.executions[node.key]
            nodes.append(
                {
                    "id": node.key,
                    "kind": "execution",
                    "level": level,
                    "pipeline": s.get("pipeline"),
                    "stage": s.get("stage"),
                    "started_at": s.get("started_at"),
                    "exit_code": s.get("exit_code"),
                    "site": s.get("site"),
                }
            )
        else:
            info = graph.artifacts[node.key]
            nodes.append(
                {
                    "id": node.key,
                    "kind": "artifact",
                    "level": level,
                    "hash": node.key,
                    "aliases": sorted(info.aliases),
                    "paths": sorted(info.paths),
                    "type": sorted(info.types)[0] if info.types else None,
                }
            )
    edges = [
        {"source": node_id(e.source), "target": node_id(e.target), "event": e.event}
        for e in sorted(lineage.edges, key=_edge_order)
    ]
    return {
        "roots": [node_id(n) for n in lineage.roots],
        "direction": lineage.direction,
        "depth": lineage.depth,
        "nodes": nodes,
        "edges": edges,
    }


def _edge_order(e: Edge) -> tuple[str, str, str]:
    return (e.source.key, e.target.key, e.event)


# -- pictures ---------------------------------------------------------------------------------


def _label(node: Node, graph: Graph) -> str:
    if node.kind == "execution":
        s = graph.executions[node.key]
        code = s.get("exit_code")
        failed = "" if code in (0, None) else f" exit {code}"
        return f"{s.get('pipeline')}/{s.get('stage')} {node.key[:8]}{failed}"
    info = graph.artifacts[node.key]
    path = sorted(info.paths)[0] if info.paths else "(no path)"
    more = f" +{len(info.paths) - 1}" if len(info.paths) > 1 else ""
    algo, _, hexhash = node.key.partition(":")
    return f"{path}{more} {algo}:{hexhash[:8]}"


def _ids(lineage: Lineage) -> dict[Node, str]:
    return {node: f"{'e' if node.kind == 'execution' else 'a'}{i}" for i, node in enumerate(lineage.nodes)}


def to_mermaid(lineage: Lineage, graph: Graph) -> str:
    """A Mermaid flowchart: executions are boxes, artifacts are rounded, data flows left to right."""
    ids = _ids(lineage)
    lines = ["flowchart LR"]
    for node, nid in ids.items():
        text = _label(node, graph).replace('"', "#quot;")
        lines.append(f'    {nid}["{text}"]' if node.kind == "execution" else f'    {nid}("{text}")')
    for e in sorted(lineage.edges, key=_edge_order):
        lines.append(f"    {ids[e.source]} --> {ids[e.target]}")
    roots = " & ".join(ids[n] for n in lineage.roots if n in ids)
    if roots:
        lines.append("    classDef root stroke-width:3px")
        lines.append(f"    class {roots.replace(' & ', ',')} root")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(lineage: Lineage, graph: Graph) -> str:
    """A Graphviz digraph: executions are boxes, artifacts are ellipses."""
    ids = _ids(lineage)
    roots = set(lineage.roots)
    lines = ["digraph lineage {", "  rankdir=LR;"]
    for node, nid in ids.items():
        shape = "box" if node.kind == "execution" else "ellipse"
        bold = ", penwidth=3" if node in roots else ""
        lines.append(f"  {nid} [shape={shape}, label={_dot_quote(_label(node, graph))}{bold}];")
    for e in sorted(lineage.edges, key=_edge_order):
        lines.append(f"  {ids[e.source]} -> {ids[e.target]} [label={e.event}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_tree(lineage: Lineage, graph: Graph) -> Any:
    """A rich Tree walking from the roots; a node seen before is shown once and marked."""
    from rich.tree import Tree

    up = lineage.direction in ("up", "both")
    down = lineage.direction in ("down", "both")
    preds: dict[Node, list[Node]] = {}
    succs: dict[Node, list[Node]] = {}
    for e in sorted(lineage.edges, key=_edge_order):
        succs.setdefault(e.source, []).append(e.target)
        preds.setdefault(e.target, []).append(e.source)
    title = "lineage " + {"up": "(upstream)", "down": "(downstream)", "both": "(up and down)"}[lineage.direction]
    tree = Tree(title)
    shown: set[tuple[Node, str]] = set()

    def style(node: Node) -> str:
        text = _label(node, graph)
        if node.kind == "execution":
            s = graph.executions[node.key]
            when = (s.get("started_at") or "")[:19].replace("T", " ")
            color = "red" if s.get("exit_code") not in (0, None) else "cyan"
            return f"[{color}]{text}[/] [dim]{when}[/]"
        return f"[green]{text}[/]"

    def grow(branch: Any, node: Node, neighbours: dict[Node, list[Node]], way: str) -> None:
        # Depth-first in display order, so the first place a node appears is where it is
        # expanded and every later one can say "see above". Iterative: a 1000-stage chain
        # must not hit the recursion limit.
        stack = [(branch, iter(neighbours.get(node, [])))]
        while stack:
            parent, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                stack.pop()
                continue
            if (nxt, way) in shown:
                parent.add(style(nxt) + " [dim](see above)[/]")
                continue
            shown.add((nxt, way))
            stack.append((parent.add(style(nxt)), iter(neighbours.get(nxt, []))))

    for root in lineage.roots:
        branch = tree.add(style(root) + " [bold](target)[/]")
        if up:
            shown.add((root, "up"))
            part = branch.add("[dim]made from[/]") if down else branch
            grow(part, root, preds, "up")
        if down:
            shown.add((root, "down"))
            part = branch.add("[dim]used by[/]") if up else branch
            grow(part, root, succs, "down")
    return tree
