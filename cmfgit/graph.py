"""Lineage over records held in memory: the execution/artifact graph.

The graph is bipartite. An execution points at the artifacts it read
(``input`` edges, artifact -> execution) and wrote (``output`` edges,
execution -> artifact), so edges follow the data. An artifact is known by its
content hash; hashes that records declare as ``aliases`` of each other (an
imported CMF artifact's ``md5:`` next to its ``blake3:``) are one artifact,
named by its blake3 hash when it has one. Missing artifacts have no hash and
take no part in lineage.

Depth counts execution hops. Going up from an artifact, depth 1 is its
producers and their inputs; going up from an execution, depth 0 is the
execution and its inputs, depth 1 adds the producers of those inputs and
their inputs. Going down mirrors this. Every node is visited once, so an
execution whose output has the same hash as its input (a copy, a no-op
step) cannot loop.

This module is pure: no I/O. The sync engineer's ``pull --with-lineage``
and the query API use it directly; the SQLite index answers the same
questions with recursive CTEs at scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

EXECUTION_SCHEMA = "cmfgit/execution/1"
Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")

# The few execution fields a lineage view shows; the full record stays with the caller.
SUMMARY_FIELDS = ("pipeline", "stage", "type", "started_at", "ended_at", "exit_code", "site")


@dataclass(frozen=True, order=True)
class Node:
    """An execution (key = record id) or an artifact (key = its hash)."""

    kind: Literal["execution", "artifact"]
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, order=True)
class Edge:
    """Data flow: artifact -> execution (``input``), execution -> artifact (``output``)."""

    source: Node
    target: Node
    event: Literal["input", "output"]


@dataclass
class ArtifactInfo:
    key: str  # canonical hash: blake3:<hex> when known, else e.g. md5:<hex>
    aliases: set[str] = field(default_factory=set)  # every other hash of the same bytes
    paths: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    size: int | None = None


@dataclass
class Lineage:
    """The result of a traversal: nodes with their hop level, and the edges among them."""

    roots: list[Node]
    direction: str
    depth: int | None
    levels: dict[Node, int]  # execution hops from the nearest root (0 for roots)
    edges: set[Edge]

    @property
    def nodes(self) -> list[Node]:
        return sorted(self.levels, key=lambda n: (self.levels[n], n))

    def executions(self) -> set[str]:
        return {n.key for n in self.levels if n.kind == "execution"}

    def artifacts(self) -> set[str]:
        return {n.key for n in self.levels if n.kind == "artifact"}


def _pref(h: str) -> tuple[int, str]:
    return (0 if h.startswith("blake3:") else 1, h)


class Graph:
    """The lineage graph of a set of records. Build with :meth:`build` or :meth:`add`."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}  # id -> summary fields
        self._raw_inputs: dict[str, list[str]] = {}
        self._raw_outputs: dict[str, list[str]] = {}
        self._raw_info: dict[str, ArtifactInfo] = {}
        self._parent: dict[str, str] = {}  # union-find over hashes (aliases)
        self._ready = False
        self._inputs: dict[str, list[str]] = {}
        self._outputs: dict[str, list[str]] = {}
        self._producers: dict[str, list[str]] = {}
        self._consumers: dict[str, list[str]] = {}
        self._artifacts: dict[str, ArtifactInfo] = {}
        self._canon: dict[str, str] = {}

    # Derived maps, computed on first use after records were added.
    @property
    def inputs(self) -> dict[str, list[str]]:
        """execution id -> artifact keys it read."""
        self._finish()
        return self._inputs

    @property
    def outputs(self) -> dict[str, list[str]]:
        """execution id -> artifact keys it wrote."""
        self._finish()
        return self._outputs

    @property
    def producers(self) -> dict[str, list[str]]:
        """artifact key -> executions that wrote it, oldest first."""
        self._finish()
        return self._producers

    @property
    def consumers(self) -> dict[str, list[str]]:
        """artifact key -> executions that read it, oldest first."""
        self._finish()
        return self._consumers

    @property
    def artifacts(self) -> dict[str, ArtifactInfo]:
        self._finish()
        return self._artifacts

    # -- building ---------------------------------------------------------

    @classmethod
    def build(cls, records: Iterable[tuple[str, dict[str, Any]]]) -> Graph:
        graph = cls()
        for rid, record in records:
            graph.add(rid, record)
        return graph

    def add(self, rid: str, record: dict[str, Any]) -> None:
        """Add one record; anything but an execution is ignored."""
        if not isinstance(record, dict) or record.get("schema") != EXECUTION_SCHEMA:
            return
        self._ready = False
        self.executions[rid] = {k: record.get(k) for k in SUMMARY_FIELDS}
        self._raw_inputs[rid] = self._artifacts_of(record.get("inputs"))
        self._raw_outputs[rid] = self._artifacts_of(record.get("outputs"))

    def add_alias(self, a: str, b: str) -> None:
        """Declare two hashes as names of the same artifact."""
        self._ready = False
        self._raw_info.setdefault(a, ArtifactInfo(a))
        self._raw_info.setdefault(b, ArtifactInfo(b))
        self._union(a, b)

    def add_artifact(self, h: str, path: str | None = None, type: str | None = None) -> None:
        """Make an artifact known even if no execution added so far names it."""
        self._ready = False
        info = self._raw_info.setdefault(h, ArtifactInfo(h))
        if path:
            info.paths.add(path)
        if type:
            info.types.add(type)

    def _artifacts_of(self, items: Any) -> list[str]:
        hashes: list[str] = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            h = item.get("hash")
            if not isinstance(h, str) or not h:
                continue
            if h not in hashes:
                hashes.append(h)
            info = self._raw_info.setdefault(h, ArtifactInfo(h))
            if isinstance(item.get("path"), str):
                info.paths.add(item["path"])
            if isinstance(item.get("type"), str):
                info.types.add(item["type"])
            if isinstance(item.get("kind"), str):
                info.kinds.add(item["kind"])
            if isinstance(item.get("size"), int):
                info.size = item["size"]
            for alias in item.get("aliases") or ():
                if isinstance(alias, str) and alias:
                    self._union(h, alias)
                    self._raw_info.setdefault(alias, ArtifactInfo(alias))
        return hashes

    def _find(self, h: str) -> str:
        root = h
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        while self._parent.get(h, h) != root:  # path compression
            self._parent[h], h = root, self._parent[h]
        return root

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb, key=_pref)] = min(ra, rb, key=_pref)

    def _finish(self) -> None:
        if self._ready:
            return
        self._ready = True  # set first: the properties below must not recurse
        # The representative of each alias class is its best name (blake3 first).
        classes: dict[str, list[str]] = {}
        for h in self._raw_info:
            classes.setdefault(self._find(h), []).append(h)
        self._canon = {}
        self._artifacts = {}
        for members in classes.values():
            key = min(members, key=_pref)
            info = ArtifactInfo(key)
            for h in members:
                self._canon[h] = key
                raw = self._raw_info[h]
                info.paths |= raw.paths
                info.types |= raw.types
                info.kinds |= raw.kinds
                if raw.size is not None:
                    info.size = raw.size
            info.aliases = {h for h in members if h != key}
            self._artifacts[key] = info
        self._inputs, self._outputs, self._producers, self._consumers = {}, {}, {}, {}
        for rid in self.executions:
            ins = list(dict.fromkeys(self._canon[h] for h in self._raw_inputs[rid]))
            outs = list(dict.fromkeys(self._canon[h] for h in self._raw_outputs[rid]))
            self._inputs[rid], self._outputs[rid] = ins, outs
            for key in ins:
                self._consumers.setdefault(key, []).append(rid)
            for key in outs:
                self._producers.setdefault(key, []).append(rid)
        for index in (self._consumers, self._producers):
            for rids in index.values():
                rids.sort(key=lambda r: (str(self.executions[r].get("started_at") or ""), r))

    # -- looking things up ------------------------------------------------

    def canonical(self, h: str) -> str | None:
        """The artifact key of a hash or alias, or None if no record names it."""
        self._finish()
        return self._canon.get(h)

    def find_artifacts(self, prefix: str) -> list[str]:
        """Artifact keys whose hash or alias starts with ``prefix``.

        A bare hex prefix matches any algorithm; ``blake3:ab`` or ``md5:ab``
        match that algorithm only.
        """
        self._finish()
        prefix = prefix.strip().lower()
        found: set[str] = set()
        for h, key in self._canon.items():
            name = h if ":" in prefix else h.split(":", 1)[-1]
            if name.startswith(prefix):
                found.add(key)
        return sorted(found)

    def find_executions(self, prefix: str) -> list[str]:
        prefix = prefix.strip().lower()
        return sorted(rid for rid in self.executions if rid.startswith(prefix))

    def artifacts_at_path(self, path: str) -> list[str]:
        """Keys of artifacts recorded at ``path`` (repo-relative), any version."""
        self._finish()
        return sorted(key for key, info in self.artifacts.items() if path in info.paths)

    def producers_of(self, h: str) -> list[str]:
        key = self.canonical(h)
        return list(self.producers.get(key, ())) if key else []

    def consumers_of(self, h: str) -> list[str]:
        key = self.canonical(h)
        return list(self.consumers.get(key, ())) if key else []

    # -- traversal --------------------------------------------------------

    def lineage(
        self,
        roots: Node | Iterable[Node],
        direction: str = "up",
        depth: int | None = None,
    ) -> Lineage:
        """Ancestors (``up``), descendants (``down``) or both of ``roots``."""
        self._finish()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        if depth is not None and depth < 0:
            raise ValueError("depth must be >= 0")
        start = [roots] if isinstance(roots, Node) else list(roots)
        start = [self._known(n) for n in start]
        levels: dict[Node, int] = {}
        for way in ("up", "down") if direction == "both" else (direction,):
            for node, level in self._walk(start, way == "up", depth):
                if level < levels.get(node, level + 1):
                    levels[node] = level
        return Lineage(start, direction, depth, levels, set(self._edges_among(levels)))

    def _known(self, node: Node) -> Node:
        if node.kind == "artifact":
            key = self._canon.get(node.key)
            if key is None:
                raise KeyError(f"unknown artifact {node.key}")
            return Node("artifact", key)
        if node.key not in self.executions:
            raise KeyError(f"unknown execution {node.key}")
        return node

    def _walk(self, start: list[Node], up: bool, depth: int | None) -> Iterator[tuple[Node, int]]:
        # Towards the sources (up): artifact -> its producers -> their inputs.
        to_execs = self.producers if up else self.consumers
        to_arts = self.inputs if up else self.outputs
        seen_execs: set[str] = set()
        seen_arts: set[str] = set()
        arts: list[str] = []
        for node in start:
            yield node, 0
            if node.kind == "artifact":
                if node.key not in seen_arts:
                    seen_arts.add(node.key)
                    arts.append(node.key)
            elif node.key not in seen_execs:
                seen_execs.add(node.key)
                for key in to_arts.get(node.key, ()):
                    yield Node("artifact", key), 0
                    if key not in seen_arts:
                        seen_arts.add(key)
                        arts.append(key)
        level = 0
        while arts and (depth is None or level < depth):
            level += 1
            execs: list[str] = []
            for key in arts:
                for rid in to_execs.get(key, ()):
                    if rid not in seen_execs:
                        seen_execs.add(rid)
                        execs.append(rid)
            arts = []
            for rid in execs:
                yield Node("execution", rid), level
                for key in to_arts.get(rid, ()):
                    yield Node("artifact", key), level
                    if key not in seen_arts:
                        seen_arts.add(key)
                        arts.append(key)

    def _edges_among(self, levels: dict[Node, int]) -> Iterator[Edge]:
        for node in levels:
            if node.kind != "execution":
                continue
            for key in self.inputs.get(node.key, ()):
                art = Node("artifact", key)
                if art in levels:
                    yield Edge(art, node, "input")
            for key in self.outputs.get(node.key, ()):
                art = Node("artifact", key)
                if art in levels:
                    yield Edge(node, art, "output")

    # -- conveniences for callers that want sets of ids ----------------------

    def closure(self, exec_ids: Iterable[str], direction: str = "up", depth: int | None = None) -> set[str]:
        """``exec_ids`` (those that are known) plus every execution up or down from them."""
        roots = [Node("execution", r) for r in exec_ids if r in self.executions]
        if not roots:
            return set()
        return self.lineage(roots, direction, depth).executions()

    def ancestor_executions(self, exec_ids: Iterable[str], depth: int | None = None) -> set[str]:
        """Executions strictly upstream of ``exec_ids``."""
        ids = set(exec_ids)
        return self.closure(ids, "up", depth) - ids

    def descendant_executions(self, exec_ids: Iterable[str], depth: int | None = None) -> set[str]:
        """Executions strictly downstream of ``exec_ids``."""
        ids = set(exec_ids)
        return self.closure(ids, "down", depth) - ids
