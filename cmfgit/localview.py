"""Which records of the global view a ``cmfgit pull`` brings into a clone.

A selection is a set of filters: pipelines (any of), stages (any of), run
ids (prefixes, any of), artifacts (any of), tags (all of: ``--tag k=v``
repeated means AND) and a start time; the kinds combine with AND. A run
carries a tag when it is tagged itself or reads or writes an artifact version
that is (tags are annotation records, cmfgit/tags.py, folded as every reader
folds them). With no filter everything is selected. ``with_lineage`` adds the ancestors of the selected executions (the
producers of their inputs, recursively, across pipelines). Annotations follow
the executions and artifacts they target. Every retraction is brought, and
no record it withdraws (docs/merging.md, deleted records stay deleted).

Records are canonical YAML, so top-level fields sit at column 0 and hashes are
literal text: most records are ruled out by a byte search, and only the
candidates are parsed. That keeps a filtered pull over a large view cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cmfgit import canonical, retractions, schema
from cmfgit.errors import RecordError, UsageError
from cmfgit.repo import Repo

_HASH_TEXT = re.compile(rb"(?:blake3:[0-9a-f]{64}|md5:[0-9a-f]{32})")
_HASH_ARG = re.compile(r"^(blake3|md5):([0-9a-f]{4,64})$")
_HEX_ARG = re.compile(r"^[0-9a-f]{4,64}$")
_RELATIVE = re.compile(r"^(\d+)\s*([hdw])$")
_STARTED = re.compile(rb"^started_at: '([^']*)'$", re.M)
_TARGET = re.compile(rb"^target: (.*)$", re.M)
_ID_TEXT = re.compile(r"^[0-9a-f]{64}$")
_RETRACTION = schema.RETRACTION.encode()


@dataclass(frozen=True)
class ArtifactKey:
    """An artifact as the user named it: a hash (or a hash prefix), or a path."""

    text: str
    hash_prefix: str | None = None  # 'blake3:<hex...>' or 'md5:<hex...>' or bare hex
    path: str | None = None  # repo-relative, when no hash could be computed

    def matches(self, artifact: Mapping[str, Any]) -> bool:
        if self.path is not None:
            return artifact.get("path") == self.path
        prefix = self.hash_prefix or ""
        hashes = [artifact.get("hash")] + list(artifact.get("aliases") or [])
        for value in hashes:
            if not isinstance(value, str):
                continue
            if value.startswith(prefix) or value.partition(":")[2].startswith(prefix):
                return True
        return False


@dataclass(frozen=True)
class Selection:
    pipelines: tuple[str, ...] = ()
    artifacts: tuple[ArtifactKey, ...] = ()
    since: str | None = None  # canonical UTC time; runs started at or after it
    with_lineage: bool = False
    stages: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # (name, value): all of them
    runs: tuple[str, ...] = ()  # execution id prefixes

    @property
    def everything(self) -> bool:
        return not (self.pipelines or self.artifacts or self.stages or self.tags or self.runs) and self.since is None


def parse_tags(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``--tag KEY=VALUE`` words as (name, value) pairs."""
    from cmfgit.tags import check_name

    found: list[tuple[str, str]] = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--tag '{item}' is not KEY=VALUE")
        found.append((check_name(key.strip()), value))
    return tuple(found)


def tagged_targets(records: Mapping[str, bytes], wanted: tuple[tuple[str, str], ...]) -> set[str]:
    """Execution ids and artifact hashes whose current tags include every (name, value) of ``wanted``."""
    from cmfgit.tags import TAG_KIND, fold

    annotation = schema.ANNOTATION.encode()
    kind = canonical.dump({"kind": TAG_KIND})
    notes: list[tuple[str, dict[str, Any]]] = []
    for rid, data in records.items():
        if schema_of(data) == annotation and _has_line(data, kind):
            record = canonical.load(data, f"record {rid[:12]}")
            if isinstance(record, dict):
                notes.append((rid, record))
    return {
        target
        for target, tags in fold(notes).items()
        if all(name in tags and str(tags[name]) == value for name, value in wanted)
    }


def parse_since(text: str, now: datetime | None = None) -> str:
    """A start time from ``2026-01-01``, ``2026-01-01T12:00[:00][Z|+hh:mm]`` or
    a relative ``12h``, ``7d``, ``2w``. Times without a zone are UTC."""
    raw = text.strip()
    rel = _RELATIVE.match(raw)
    if rel:
        amount, unit = int(rel.group(1)), rel.group(2)
        delta = {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
        return schema.format_time((now or datetime.now(timezone.utc)) - delta)
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError:
        raise UsageError(f"--since: '{text}' is not a date (2026-01-31, 2026-01-31T12:00Z, 7d, 12h)") from None
    return schema.format_time(moment)


def artifact_key(repo: Repo, text: str, cwd: Path | None = None) -> ArtifactKey:
    """Resolve ``--artifact``: a hash or hash prefix, else a path (hashed if it exists)."""
    raw = text.strip()
    if not raw:
        raise UsageError("--artifact needs a path or a hash")
    lowered = raw.lower()
    found = _HASH_ARG.match(lowered)
    if found:
        return ArtifactKey(raw, hash_prefix=lowered)
    full = Path(cwd or Path.cwd()) / raw
    if os.path.lexists(full):
        from cmfgit.hashing import Hasher

        with Hasher(repo.state_dir / "hashcache.sqlite", progress=False) as hasher:
            return ArtifactKey(raw, hash_prefix=hasher.hash_path(full, raw).hash)
    if _HEX_ARG.match(lowered):
        return ArtifactKey(raw, hash_prefix=lowered)
    return ArtifactKey(raw, path=repo.relpath(raw, cwd))


@dataclass
class _View:
    """Lazily parsed records of the view, and a hash -> records text index."""

    records: Mapping[str, bytes]
    parsed: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_hash: dict[bytes, list[str]] | None = None

    def get(self, rid: str) -> dict[str, Any]:
        record = self.parsed.get(rid)
        if record is None:
            value = canonical.load(self.records[rid], f"record {rid[:12]}")
            if not isinstance(value, dict):
                raise RecordError(f"record {rid[:12]}", "a record must be a YAML mapping")
            record = self.parsed[rid] = value
        return record

    def by_hash(self) -> dict[bytes, list[str]]:
        if self._by_hash is None:
            index: dict[bytes, list[str]] = {}
            for rid, data in self.records.items():
                for found in set(_HASH_TEXT.findall(data)):
                    index.setdefault(found, []).append(rid)
            self._by_hash = index
        return self._by_hash


def schema_of(data: bytes) -> bytes:
    """The ``schema:`` value of canonical bytes (a top-level key: at column 0)."""
    at = 0 if data.startswith(b"schema: ") else data.find(b"\nschema: ") + 1
    if at == 0 and not data.startswith(b"schema: "):
        return b""
    end = data.find(b"\n", at)
    value = data[at + 8 : end if end >= 0 else len(data)]
    return value if value and b" " not in value else b""


def _pipeline_lines(pipelines: Iterable[str]) -> list[bytes]:
    # The exact canonical line, so quoting ('no', '0777') is handled by the dumper.
    return [canonical.dump({"pipeline": p}) for p in pipelines]


def _has_line(data: bytes, line: bytes) -> bool:
    return data.startswith(line) or (b"\n" + line) in data


def select(records: Mapping[str, bytes], sel: Selection) -> set[str]:
    """Ids of the records of ``records`` (id -> canonical bytes) that ``sel`` wants.

    Every retraction travels (a two-phase set: a clone that lacks one could
    show, or merge back, what it withdrew); a retracted record never does.
    """
    if sel.everything:
        return set(records)
    withdrawals = {rid for rid, data in records.items() if retractions.is_retraction(data)}
    withdrawn = retractions.retracted_by(records[rid] for rid in withdrawals)
    if withdrawn:
        records = {rid: data for rid, data in records.items() if rid not in withdrawn}
    view = _View(records)
    lines = _pipeline_lines(sel.pipelines)
    stages = [canonical.dump({"stage": s}) for s in sel.stages]
    tagged = tagged_targets(records, sel.tags) if sel.tags else None
    chosen = {rid for rid in records if _wanted(view, rid, sel, lines, stages, tagged)}
    if sel.with_lineage:
        chosen |= ancestors(view, chosen)
    return chosen | _annotations(view, chosen) | withdrawals


def needles(sel: Selection) -> list[bytes] | None:
    """Byte strings such that every record ``sel`` can want contains one of them
    (a top-level line, with the newline before it, or a hash prefix); None when
    there is no such shortcut (everything, lineage, a time or path filter alone).

    A reader of many records may skip, unread, every record that contains
    none: :func:`choose` would never yield it.
    """
    if sel.everything or sel.with_lineage:
        return None
    found = [f"\nschema: {schema.ANNOTATION}\n".encode(), f"\nschema: {schema.RETRACTION}\n".encode()]
    if sel.pipelines:
        return found + [b"\n" + line for line in _pipeline_lines(sel.pipelines)]
    if sel.artifacts and all(k.path is None and k.hash_prefix for k in sel.artifacts):
        return found + [(k.hash_prefix or "").encode() for k in sel.artifacts]
    return None


def choose(records: Iterable[tuple[str, bytes]], sel: Selection) -> Iterator[tuple[str, bytes]]:
    """The (id, bytes) of ``records`` that ``sel`` wants, as a stream.

    Without ``with_lineage`` or ``tags`` only the chosen executions and the annotations are
    held in memory, so pulling from a large view does not hold the view.
    """
    if sel.everything:
        yield from records
        return
    if sel.with_lineage or sel.tags:  # the ancestors, or every tag, must be known first
        held = dict(records)
        for rid in sorted(select(held, sel)):
            yield rid, held[rid]
        return
    lines = _pipeline_lines(sel.pipelines)
    stages = [canonical.dump({"stage": s}) for s in sel.stages]
    annotation = schema.ANNOTATION.encode()
    notes: dict[str, bytes] = {}
    withdrawals: dict[str, bytes] = {}
    chosen: list[tuple[str, bytes]] = []  # held until every retraction is known
    view = _View({})
    for rid, data in records:
        kind = schema_of(data)
        if kind == annotation:
            notes[rid] = data
            continue
        if kind == _RETRACTION:
            withdrawals[rid] = data
            continue
        view.records = {rid: data}
        if _wanted(view, rid, sel, lines, stages, None):
            chosen.append((rid, data))
        view.parsed.clear()
    withdrawn = retractions.retracted_by(withdrawals.values())
    aimed = {rid: _target(rid, data) for rid, data in notes.items() if rid not in withdrawn}
    wanted = {t for t in aimed.values() if t is not None}
    odd = [t.encode() for t in wanted if not _HASH_TEXT.fullmatch(t.encode()) and not _ID_TEXT.fullmatch(t)]
    targets: set[str] = set()
    for rid, data in chosen:
        if rid not in withdrawn:
            if wanted:  # only executions that some annotation may name are parsed
                targets |= _named(rid, data, wanted, odd)
            yield rid, data
    for rid, target in aimed.items():
        if target is not None and target in targets:
            yield rid, notes[rid]
    yield from withdrawals.items()


def _target(rid: str, data: bytes) -> str | None:
    """An annotation's target from its canonical bytes (a plain or single-quoted
    scalar at column 0), parsing only what a byte read cannot settle."""
    found = _TARGET.search(data)
    if found is not None:
        raw = found.group(1)
        if raw[:1] == b"'" and raw[-1:] == b"'" and len(raw) >= 2:
            return raw[1:-1].replace(b"''", b"'").decode("utf-8", "replace")
        if raw[:1] not in (b'"', b"", b"!", b"&", b"*", b"{", b"[", b"|", b">"):
            return raw.decode("utf-8", "replace")
    value = canonical.load(data, f"record {rid[:12]}")
    target = value.get("target") if isinstance(value, dict) else None
    return target if isinstance(target, str) else None


def _named(rid: str, data: bytes, wanted: set[str], odd: list[bytes]) -> set[str]:
    """The names among ``wanted`` by which an annotation can target execution ``rid``:
    its id, and the hashes of its inputs and outputs. A byte search rules out the
    records that mention none of ``wanted`` (hashes as text; ``odd``: the wanted
    names that look like neither a hash nor an id); only the others are parsed."""
    named = {rid} & wanted
    mentioned = any(h.decode() in wanted for h in _HASH_TEXT.findall(data)) or any(o in data for o in odd)
    if mentioned:
        record = canonical.load(data, f"record {rid[:12]}")
        if isinstance(record, dict):
            named |= (_hashes(record.get("inputs")) | _hashes(record.get("outputs"))) & wanted
    return named


def _wanted(
    view: _View, rid: str, sel: Selection, lines: list[bytes], stages: list[bytes], tagged: set[str] | None
) -> bool:
    """Does execution ``rid`` pass the filters? Byte checks first, parsing last."""
    data = view.records[rid]
    if schema_of(data) != schema.EXECUTION.encode():
        return False
    if sel.runs and not any(rid.startswith(prefix) for prefix in sel.runs):
        return False
    if lines and not any(_has_line(data, line) for line in lines):
        return False
    if stages and not any(_has_line(data, line) for line in stages):
        return False
    if sel.since is not None:
        started = _STARTED.search(data)
        if started is None or started.group(1).decode() < sel.since:
            return False
    if tagged is not None and rid not in tagged:
        record = view.get(rid)
        if not tagged & (_hashes(record.get("inputs")) | _hashes(record.get("outputs"))):
            return False
    return not sel.artifacts or _touches(view, rid, sel.artifacts)


def _touches(view: _View, rid: str, keys: tuple[ArtifactKey, ...]) -> bool:
    data = view.records[rid]
    if all(k.path is None and (k.hash_prefix or "").encode() not in data for k in keys):
        return False  # cheap rejection: no key's text occurs in the record
    record = view.get(rid)
    artifacts = list(record.get("inputs") or []) + list(record.get("outputs") or [])
    return any(key.matches(a) for key in keys for a in artifacts if isinstance(a, dict))


def _hashes(artifacts: Any) -> set[str]:
    found: set[str] = set()
    for art in artifacts or []:
        if isinstance(art, dict):
            for value in [art.get("hash")] + list(art.get("aliases") or []):
                if isinstance(value, str):
                    found.add(value)
    return found


def ancestors(view: _View, executions: set[str]) -> set[str]:
    """Producers of the inputs of ``executions``, recursively (not the executions).

    The text index narrows the view to the records that mention a hash on the
    way up (a superset of the ancestors); ``graph.Graph`` then decides exactly,
    aliases included.
    """
    from cmfgit.graph import Graph

    frontier: set[str] = set()
    for rid in executions:
        frontier |= _hashes(view.get(rid).get("inputs"))
    involved = set(executions)
    searched: set[str] = set()
    while frontier:
        wanted = frontier.pop()
        searched.add(wanted)
        for candidate in view.by_hash().get(wanted.encode(), []):
            record = view.get(candidate)
            if record.get("schema") != schema.EXECUTION:
                continue
            involved.add(candidate)  # a producer, or a record that may link aliases
            for art in list(record.get("inputs") or []) + list(record.get("outputs") or []):
                names = _hashes([art])
                if wanted in names:
                    frontier |= names - searched  # aliases of the same artifact
            if wanted in _hashes(record.get("outputs")):
                frontier |= _hashes(record.get("inputs")) - searched
    graph = Graph.build((rid, view.get(rid)) for rid in involved)
    return graph.ancestor_executions(executions)


def _annotations(view: _View, executions: set[str]) -> set[str]:
    """Annotations whose target is one of ``executions`` or one of their artifacts."""
    targets = set(executions)
    for rid in executions:
        record = view.get(rid)
        targets |= _hashes(record.get("inputs")) | _hashes(record.get("outputs"))
    annotation = schema.ANNOTATION.encode()
    found: set[str] = set()
    for rid, data in view.records.items():
        if schema_of(data) == annotation and view.get(rid).get("target") in targets:
            found.add(rid)
    return found
