"""``cmfgit import dvc [PATH]``: the stages a DVC project's ``dvc.lock`` recorded, as executions.

The lock is read from git (``git show <commit>:<dir>/dvc.lock``), never from the
working tree, and its history is walked along the first-parent line of HEAD.
Each stage gets one execution per commit at which its lock entry took a new
value (a commit that leaves a stage's entry as it was adds nothing for it), so:

- without ``--all-commits``, the stages of HEAD's lock, each attributed to the
  commit where its entry got its current value;
- with ``--all-commits``, every value every stage's entry ever had.

Both give the same record for the same (commit, stage), whose uuid is derived
from the project's directory, the stage and the commit: a re-import writes
nothing. Deps are inputs and outs are outputs, named ``md5:<hex>`` as DVC
hashed them; when the bytes with that md5 are present (the working-tree file,
or DVC's cache ``.dvc/cache/files/md5/``) the artifact is named by its blake3
with the md5 as an alias, as ``cmfgit import`` does for CMF's artifacts.
``dvc.yaml`` at the same commit only says which outs are metrics or plots; the
numbers of a metrics out that git has at that commit (a JSON or YAML file) are
the execution's metrics.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cmfgit import canonical, gitutil, schema
from cmfgit.errors import ForeignFormatError, GitError, PathError, RecordError, UsageError
from cmfgit.hashing import Hasher
from cmfgit.recorder import MODEL_SUFFIXES
from cmfgit.repo import Repo


@dataclass
class DvcReport:
    path: str
    commits: int = 0  # commits whose dvc.lock was read
    executions: int = 0
    written: int = 0
    present: int = 0
    kept: int = 0  # same (commit, stage) already imported with other content
    linked: int = 0  # artifacts whose bytes were found (blake3 + md5 alias)
    stages: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": "dvc",
            "commits": self.commits,
            "executions": self.executions,
            "written": self.written,
            "present": self.present,
            "kept": self.kept,
            "linked": self.linked,
            "stages": self.stages,
            "ids": self.ids,
        }


def _git(cwd: Path, *args: str) -> bytes | None:
    """The output of ``git ARGS``, or None if git says no (a path not in a commit, no repository)."""
    try:
        return gitutil.git(args, cwd)
    except GitError:
        return None


def _load_yaml(data: bytes, where: str) -> Any:
    import yaml

    try:
        return yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForeignFormatError(where, f"not valid YAML ({first})") from None


def _stages_of_lock(data: bytes, where: str) -> dict[str, dict[str, Any]]:
    doc = _load_yaml(data, where)
    if not isinstance(doc, dict):
        raise ForeignFormatError(where, "not a dvc.lock (not a mapping)")
    if "schema" in doc:
        if str(doc["schema"]) != "2.0":
            raise ForeignFormatError(where, f"dvc.lock schema {doc['schema']!r} is not supported (2.0 is)")
        stages = doc.get("stages") or {}
    else:
        stages = doc  # DVC 1's lock: the stages at the top level
    if not isinstance(stages, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in stages.items()):
        raise ForeignFormatError(where, "not a dvc.lock (its stages are not a mapping of names to entries)")
    for name, entry in stages.items():
        for key in ("deps", "outs"):
            items = entry.get(key) or []
            if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("path"), str) for i in items
            ):
                raise ForeignFormatError(where, f"stage '{name}': {key} is not a list of entries with a path")
        if not isinstance(entry.get("params") or {}, dict):
            raise ForeignFormatError(where, f"stage '{name}': params is not a mapping")
    return stages


def _yaml_types(data: bytes | None) -> dict[str, str]:
    """path -> artifact type for the outs dvc.yaml declares as metrics or plots."""
    if data is None:
        return {}
    try:
        doc = _load_yaml(data, "dvc.yaml")
    except ForeignFormatError:
        return {}
    types: dict[str, str] = {}
    stages = doc.get("stages") if isinstance(doc, dict) else None
    for entry in (stages or {}).values() if isinstance(stages, dict) else ():
        if not isinstance(entry, dict):
            continue
        for key in ("metrics", "plots"):
            for item in entry.get(key) or []:
                name = next(iter(item)) if isinstance(item, dict) and item else item
                if isinstance(name, str):
                    types[name] = "metrics"
    return types


def _command(cmd: Any) -> list[str]:
    if isinstance(cmd, list):
        cmds = [c for c in cmd if isinstance(c, str)]
        return cmds and (_command(cmds[0]) if len(cmds) == 1 else ["sh", "-c", " && ".join(cmds)])
    if not isinstance(cmd, str) or not cmd.strip():
        return []
    try:
        return shlex.split(cmd)
    except ValueError:
        return [cmd]


def _params(section: dict[str, Any]) -> dict[str, Any]:
    """``params.yaml``'s keys as they are, another file's as ``file:key``."""
    out: dict[str, Any] = {}
    for file, values in sorted(section.items()):
        if isinstance(values, dict):
            for key, value in values.items():
                out[str(key) if file == "params.yaml" else f"{file}:{key}"] = value
        else:
            out[str(file)] = values
    return out


class _Bytes:
    """Finds the bytes of an md5 in the project's working tree or DVC's cache."""

    def __init__(self, project: Path, hasher: Hasher) -> None:
        self.project = project
        self.hasher = hasher
        self._seen: dict[tuple[str, str], tuple[str, int, str] | None] = {}

    def find(self, path: str, md5: str) -> tuple[str, int, str] | None:
        key = (path, md5)
        if key not in self._seen:
            self._seen[key] = self._find(path, md5)
        return self._seen[key]

    def _find(self, path: str, md5: str) -> tuple[str, int, str] | None:
        from cmfgit.data.dvclayout import file_md5, tree_md5

        full = self.project / path
        try:
            if md5.endswith(".dir"):
                if full.is_dir() and tree_md5(full) == md5[:-4]:
                    digest = self.hasher.hash_path(full, path)
                    return digest.hash, digest.size, "dir"
                return None
            if full.is_file() and file_md5(full) == md5:
                digest = self.hasher.hash_path(full, path)
                return digest.hash, digest.size, "file"
            cached = self.project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
            if cached.is_file() and file_md5(cached) == md5:
                digest = self.hasher.hash_path(cached, path)
                return digest.hash, digest.size, "file"
        except (OSError, PathError):
            return None
        return None


def _artifact(item: dict[str, Any], role: str, types: dict[str, str], found: _Bytes) -> tuple[dict[str, Any], bool]:
    path = item["path"]
    md5 = item.get("md5")
    source = {k: v for k, v in item.items() if k != "path" and isinstance(v, (str, int, float, bool))}
    kind = "dir" if isinstance(md5, str) and md5.endswith(".dir") else "file"
    if path in types:
        art_type = types[path]
    elif role == "outs" and path.lower().endswith(MODEL_SUFFIXES):
        art_type = "model"
    else:
        art_type = "dataset"
    hex_md5 = md5[:-4] if isinstance(md5, str) and md5.endswith(".dir") else md5
    valid = isinstance(hex_md5, str) and len(hex_md5) == 32 and all(c in "0123456789abcdef" for c in hex_md5)
    record: dict[str, Any] = {
        "path": path,
        "hash": f"md5:{hex_md5}" if valid else None,
        "size": item.get("size") if isinstance(item.get("size"), int) and kind == "file" else None,
        "type": art_type,
        "kind": kind if valid else "missing",
        "props": {},
        "source": {"dvc": source},
    }
    if not valid:
        return record, False
    hit = found.find(path, str(md5))
    if hit is None:
        return record, False
    record.update(hash=hit[0], size=hit[1], kind=hit[2], aliases=[record["hash"]])
    return record, True


def _metrics(root: Path, commit: str, prefix: str, outputs: list[dict[str, Any]]) -> dict[str, int | float]:
    """The numbers of the stage's metrics outs that git has at ``commit`` (DVC keeps them out of its
    cache by default), nested keys joined with dots as ``dvc metrics show`` shows them."""
    import json

    found: dict[str, int | float] = {}
    for art in outputs:
        if art["type"] != "metrics" or not art["path"].endswith((".json", ".yaml", ".yml")):
            continue
        where = f"{prefix}/{art['path']}" if prefix else art["path"]
        got = _git(root, "show", f"{commit}:{where}")
        if got is None:
            continue
        try:
            doc = json.loads(got) if where.endswith(".json") else _load_yaml(got, where)
        except (ValueError, ForeignFormatError):
            continue
        stack: list[tuple[str, Any]] = [("", doc)]
        while stack:
            key, value = stack.pop()
            if isinstance(value, dict):
                stack += [(f"{key}.{k}" if key else str(k), v) for k, v in value.items()]
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key:
                found[key] = value
    return dict(sorted(found.items()))


def _time(epoch: int) -> str:
    return schema.format_time(datetime.fromtimestamp(epoch, tz=timezone.utc))


def import_dvc(
    repo: Repo, path: str | os.PathLike[str] = ".", pipeline: str | None = None, all_commits: bool = False
) -> DvcReport:
    """Import the stages of the DVC project at ``path`` (see the module's docstring)."""
    from cmfgit.cmf_import import write_batch
    from cmfgit.config import load_config
    from cmfgit.redact import Redactor

    shown = os.fspath(path)
    project = Path(path).resolve()
    if not project.is_dir():
        raise PathError(shown, "is not a directory")
    if not (project / ".dvc").is_dir() and not (project / "dvc.yaml").is_file():
        raise UsageError(f"{shown}: not a DVC project (no .dvc directory or dvc.yaml)")
    top = _git(project, "rev-parse", "--show-toplevel")
    if top is None:
        raise UsageError(f"{shown}: not in a git repository (DVC's history is read from git)")
    root = Path(top.decode().strip())
    prefix = project.relative_to(root.resolve()).as_posix() if project != root.resolve() else ""
    lock = f"{prefix}/dvc.lock" if prefix else "dvc.lock"
    spec = f"{prefix}/dvc.yaml" if prefix else "dvc.yaml"
    log = _git(root, "log", "--first-parent", "--reverse", "--format=%H %ct", "HEAD", "--", lock)
    commits = [line.split() for line in (log or b"").decode().splitlines() if line.strip()]
    if not commits:
        raise UsageError(f"{shown}: no commit has a dvc.lock (run 'dvc repro' and commit dvc.lock)")
    from cmfgit.init import default_pipeline

    config = load_config(repo)
    pipeline_name = pipeline or config.pipeline or default_pipeline(repo)
    redactor = Redactor(config.redact_keys, config.redact_values)
    remote = gitutil.config_get(root, "remote.origin.url") or None
    remote = redactor.text(remote) if remote else None
    report = DvcReport(shown)
    # (commit, epoch, stage, entry, types) for each new value of a stage's entry
    changes: list[tuple[str, int, str, dict[str, Any], dict[str, str]]] = []
    last: dict[str, dict[str, Any]] = {}
    for commit, epoch_text in commits:
        shown_lock = f"{lock} at {commit[:12]}"
        got = _git(root, "show", f"{commit}:{lock}")
        if got is None:  # deleted at this commit
            last = {}
            continue
        stages = _stages_of_lock(got, shown_lock)
        report.commits += 1
        spec_got = _git(root, "show", f"{commit}:{spec}")
        types = _yaml_types(spec_got)
        for name, entry in stages.items():
            if last.get(name) != entry:
                changes.append((commit, int(epoch_text), name, entry, types))
        last = stages
    if not all_commits:
        current = {name: entry for name, entry in last.items()}
        latest: dict[str, tuple[str, int, str, dict[str, Any], dict[str, str]]] = {}
        for change in changes:
            if change[2] in current:
                latest[change[2]] = change
        changes = [c for c in changes if latest.get(c[2]) is c]
    batch: list[tuple[str, bytes, str]] = []
    with Hasher(repo.state_dir / "hashcache.sqlite", progress=False) as hasher:
        found = _Bytes(project, hasher)
        for commit, epoch, name, entry, types in changes:
            inputs: list[dict[str, Any]] = []
            outputs: list[dict[str, Any]] = []
            linked = 0
            for role, target in (("deps", inputs), ("outs", outputs)):
                for item in entry.get(role) or []:
                    art, hit = _artifact(item, role, types, found)
                    target.append(art)
                    linked += hit
            metrics = _metrics(root, commit, prefix, outputs)
            basis = f"dvc\0{prefix}\0{name}\0{commit}"
            record: dict[str, Any] = {
                "schema": schema.EXECUTION,
                "uuid": "dvc-" + hashlib.sha256(basis.encode()).hexdigest()[:32],
                "pipeline": pipeline_name,
                "stage": name,
                "type": name.split("@", 1)[0],
                "command": redactor.argv(_command(entry.get("cmd"))),
                "params": redactor.mapping(_params(entry.get("params") or {})),
                "started_at": _time(epoch),
                "ended_at": None,
                "exit_code": None,
                "site": "dvc",
                "host": "",
                "user": "",
                "git": {"commit": commit, "branch": None, "dirty": False, "remote": remote, "tree": None},
                "env": {"python": "", "platform": ""},
                "inputs": inputs,
                "outputs": outputs,
                "metrics": metrics,
                "source": {"dvc": {"lock": lock, "commit": commit, "stage": name}},
            }
            try:
                schema.validate(record, "imported execution")
                data, rid = canonical.encode(record)
            except RecordError as exc:
                raise ForeignFormatError(
                    f"{lock} at {commit[:12]}", f"stage '{name}' cannot be imported: {exc}"
                ) from None
            report.executions += 1
            report.linked += linked
            report.stages[name] = report.stages.get(name, 0) + 1
            batch.append((rid, data, record["uuid"]))
    write_batch(repo, batch, report)
    return report
