"""``cmfgit import mlflow [SOURCE]``: the runs of an MLflow tracking store, as executions.

Two kinds of store are read directly, with no MLflow installed:

- a **file store** (``./mlruns``, or ``file:///…/mlruns``): one directory per
  experiment with its ``meta.yaml``, one per run with ``meta.yaml`` and the
  ``params/``, ``metrics/`` and ``tags/`` files (a name with ``/`` in it is a
  subdirectory); a deleted experiment is in ``.trash/``;
- an **sqlite database** (``mlflow.db``, or ``sqlite:///mlflow.db``), opened
  read-only: the ``experiments``, ``runs``, ``params``, ``tags`` and ``metrics``
  tables that MLflow's migrations create.

Experiments are pipelines and runs are executions (uuid ``mlflow-<run id>``, so a
re-import writes nothing). A run's stage is its MLflow Project entry point, else the
file name of its source (``mlflow.source.name``: ``train.py`` is ``train``), else
``run``. Params keep MLflow's text unless Python's ``str`` of a number or a bool
gives that text back (``0.1``, ``3``, ``True``; ``1e-3`` and ``0777`` stay text).
Metrics are each key's latest value as MLflow picks it (the highest step, then
the latest timestamp); a key logged more than once, or at a step other than 0,
is also a ``step_metrics`` series in logging order. The user's tags become cmfgit
tags of the execution (one annotation record); MLflow's own ``mlflow.*`` tags
(run name, user, source, git, note) and a name cmfgit cannot hold as a tag stay
verbatim in ``source.mlflow.tags``. Status
FINISHED is exit code 0, FAILED 1, KILLED 130; a RUNNING or SCHEDULED run has
neither an exit code nor an end. ``mlflow.source.git.commit``, ``.branch`` and
``.repoURL`` are the git fields. Each top-level entry under the run's artifact
directory, when that directory is on this machine, is an output hashed with
blake3: at its path in the repository when the store is inside it, else under its
MLflow artifact name with kind ``external``. Deleted runs and experiments are
not imported (counted in the report).
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from cmfgit import canonical, schema
from cmfgit.errors import ForeignFormatError, PathError, RecordError, UsageError
from cmfgit.recorder import MODEL_SUFFIXES
from cmfgit.repo import Repo
from cmfgit.tags import TAG_KIND, is_name

_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_SOURCE_TYPE = {1: "NOTEBOOK", 2: "JOB", 3: "PROJECT", 4: "LOCAL", 1000: "UNKNOWN"}
_EXIT = {"FINISHED": 0, "FAILED": 1, "KILLED": 130}
_NOT_RUNS = frozenset({"tags", "datasets", "models", "traces", "evaluation_datasets"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEX40 = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_INT = re.compile(r"^-?[0-9]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class MlflowRun:
    """One run as the store holds it: every value MLflow keeps as text is text here."""

    run_id: str
    experiment_id: str
    experiment: str
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    user: str
    source_type: str
    source_name: str
    entry_point: str
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)  # (timestamp, value, step)


@dataclass
class MlflowReport:
    path: str
    store: str  # "file" or "sqlite"
    experiments: int = 0
    runs: int = 0
    written: int = 0
    present: int = 0
    kept: int = 0  # same run imported before with other content
    deleted: int = 0  # deleted runs (and the runs of deleted experiments), not imported
    tags: int = 0  # tag annotation records written
    artifacts: int = 0  # artifacts hashed
    pipelines: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": "mlflow",
            "store": self.store,
            "experiments": self.experiments,
            "runs": self.runs,
            "written": self.written,
            "present": self.present,
            "kept": self.kept,
            "deleted": self.deleted,
            "tags": self.tags,
            "artifacts": self.artifacts,
            "pipelines": self.pipelines,
            "ids": self.ids,
        }


# -- finding the store --------------------------------------------------------------


def locate(spec: str | None) -> tuple[str, Path, str]:
    """(kind, path, shown) of the store ``spec`` names: a directory or ``file:`` URI is a
    file store, a file or ``sqlite:///`` URI an sqlite database. Without ``spec``:
    ``$MLFLOW_TRACKING_URI`` when it is local, else ``./mlruns``, else ``./mlflow.db``."""
    if spec is None:
        env = os.environ.get("MLFLOW_TRACKING_URI", "")
        if env and (env.startswith(("file:", "sqlite:///")) or "://" not in env):
            spec = env
        elif Path("mlruns").is_dir():
            spec = "mlruns"
        elif Path("mlflow.db").is_file():
            spec = "mlflow.db"
        else:
            raise UsageError("no MLflow store here: give its mlruns directory or its sqlite file (mlflow.db)")
    shown = spec
    if spec.startswith("sqlite:///"):
        path = Path(unquote(spec[len("sqlite:///") :]))
        if not path.is_file():
            raise PathError(shown, "does not exist (an MLflow sqlite database was expected)")
        return "sqlite", path, shown
    if spec.startswith("file:"):
        path = Path(unquote(urlparse(spec).path))
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec):
        raise UsageError(
            f"{shown}: only an MLflow file store (a directory, file://) or an sqlite database "
            "(a file, sqlite:///) is read; for a tracking server, import from its database file"
        )
    else:
        path = Path(spec)
    if path.is_dir():
        if not any(path.glob("*/meta.yaml")) and (path / "mlruns").is_dir():
            path = path / "mlruns"  # a project directory holding ./mlruns
        return "file", path, shown
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                magic = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise PathError(shown, exc.strerror or str(exc)) from None
        if magic != _SQLITE_MAGIC:
            raise ForeignFormatError(shown, "not an MLflow store (neither an mlruns directory nor an sqlite database)")
        return "sqlite", path, shown
    raise PathError(shown, "does not exist")


# -- the file store -----------------------------------------------------------------


def _load_yaml(path: str, shown: str) -> Any:
    import yaml

    try:
        with open(path, "rb") as fh:
            return yaml.load(fh.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise PathError(shown, exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForeignFormatError(shown, f"not valid YAML ({first})") from None


_META_LINE = re.compile(r"^([a-z_]+): ?(.*)$")


def _meta(path: str, shown: str) -> Any:
    """A ``meta.yaml`` as MLflow writes it (``yaml.safe_dump``: one ``key: value`` per line,
    plain, single-quoted or ``[]``), read without a YAML parser; anything else (a wrapped
    line, a double-quoted value) goes to the YAML parser."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise PathError(shown, exc.strerror or str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _load_yaml(path, shown)
    doc: dict[str, Any] = {}
    for line in text.splitlines():
        m = _META_LINE.match(line)
        if m is None:
            return _load_yaml(path, shown)
        key, value = m.group(1), m.group(2)
        if value in ("", "null", "~"):
            doc[key] = None
        elif value == "[]":
            doc[key] = []
        elif value.startswith("'"):
            if len(value) < 2 or not value.endswith("'") or "'" in value[1:-1].replace("''", ""):
                return _load_yaml(path, shown)
            doc[key] = value[1:-1].replace("''", "'")
        elif _INT.match(value):
            doc[key] = int(value)
        elif value[0] in '"[{&*!|>%@`#' or value in ("true", "false", "True", "False", "yes", "no"):
            return _load_yaml(path, shown)
        else:
            doc[key] = value
    return doc


def _keyed_files(top: str) -> dict[str, bytes]:
    """name -> bytes of the files under ``top`` (``params/``, ``tags/``, ``metrics/``); a
    name holding ``/`` is a subdirectory in MLflow's file store."""
    out: dict[str, bytes] = {}
    stack = [("", top)]
    while stack:
        prefix, where = stack.pop()
        try:
            it = os.scandir(where)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise PathError(where, exc.strerror or str(exc)) from None
        with it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((f"{prefix}{entry.name}/", entry.path))
                    continue
                if entry.is_symlink():  # MLflow writes none: one would bring in a file from elsewhere
                    raise PathError(entry.path, "is a symbolic link (MLflow writes none here)")
                if not entry.is_file(follow_symlinks=False):  # a fifo would block the import
                    raise PathError(entry.path, "is not a regular file")
                try:
                    fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                except OSError as exc:
                    raise PathError(entry.path, exc.strerror or str(exc)) from None
                try:
                    data = os.read(fd, 65536)
                    if len(data) == 65536:  # a long tag or metric history: the rest
                        chunks = [data]
                        while chunk := os.read(fd, 1 << 20):
                            chunks.append(chunk)
                        data = b"".join(chunks)
                finally:
                    os.close(fd)
                out[prefix + entry.name] = data
    return out


def _text(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ForeignFormatError(shown, "is not UTF-8 text") from None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _file_store_dirs(root: Path, shown: str, report: MlflowReport) -> list[tuple[str, bool, str, str]]:
    """(experiment name, deleted, experiment directory, run directory) of each run directory
    of the file store, experiment by experiment."""
    found = False
    dirs: list[tuple[str, bool, str, str]] = []
    for exp_entry in sorted(os.scandir(root), key=lambda e: e.name):
        if exp_entry.name.startswith(".") or not exp_entry.is_dir():
            continue  # .trash holds the deleted experiments
        exp_meta_path = os.path.join(exp_entry.path, "meta.yaml")
        if not os.path.isfile(exp_meta_path):
            continue
        found = True
        where = f"{shown}/{exp_entry.name}/meta.yaml"
        exp = _meta(exp_meta_path, where)
        if not isinstance(exp, dict) or not isinstance(exp.get("name"), str):
            raise ForeignFormatError(where, "not an MLflow experiment's meta.yaml (no name)")
        exp_deleted = exp.get("lifecycle_stage") == "deleted"
        if not exp_deleted:
            report.experiments += 1
        for run_entry in sorted(os.scandir(exp_entry.path), key=lambda e: e.name):
            if run_entry.name not in _NOT_RUNS and run_entry.is_dir():
                dirs.append((exp["name"], exp_deleted, exp_entry.name, run_entry.path))
    if not found:
        raise ForeignFormatError(shown, "not an MLflow file store (no experiment directory with a meta.yaml)")
    return dirs


def _read_run(item: tuple[str, bool, str, str], shown: str) -> MlflowRun | None:
    """The run in a run directory of the file store; None for a deleted run (or one of a
    deleted experiment) and for a directory that holds no run."""
    experiment, exp_deleted, exp_dir, run_dir = item
    meta_path = os.path.join(run_dir, "meta.yaml")
    if not os.path.isfile(meta_path):
        return None
    run_where = f"{shown}/{exp_dir}/{os.path.basename(run_dir)}"
    meta = _meta(meta_path, f"{run_where}/meta.yaml")
    if not isinstance(meta, dict) or not isinstance(meta.get("run_id") or meta.get("run_uuid"), str):
        raise ForeignFormatError(f"{run_where}/meta.yaml", "not an MLflow run's meta.yaml (no run_id)")
    if exp_deleted or meta.get("lifecycle_stage") == "deleted":
        return _DELETED
    run = MlflowRun(
        run_id=str(meta.get("run_id") or meta.get("run_uuid")),
        experiment_id=str(meta.get("experiment_id", exp_dir)),
        experiment=experiment,
        name=str(meta.get("run_name") or ""),
        status=_STATUS.get(_int_or_none(meta.get("status")) or 0, str(meta.get("status") or "")),
        start_ms=_int_or_none(meta.get("start_time")),
        end_ms=_int_or_none(meta.get("end_time")),
        user=str(meta.get("user_id") or ""),
        source_type=_SOURCE_TYPE.get(_int_or_none(meta.get("source_type")) or 0, ""),
        source_name=str(meta.get("source_name") or ""),
        entry_point=str(meta.get("entry_point_name") or ""),
        artifact_uri=str(meta.get("artifact_uri") or ""),
    )
    for key, data in _keyed_files(os.path.join(run_dir, "params")).items():
        run.params[key] = _text(data, f"{run_where}/params/{key}")
    for key, data in _keyed_files(os.path.join(run_dir, "tags")).items():
        run.tags[key] = _text(data, f"{run_where}/tags/{key}")
    for key, data in _keyed_files(os.path.join(run_dir, "metrics")).items():
        run.metrics[key] = _metric_lines(data, f"{run_where}/metrics/{key}")
    return run


def _metric_lines(data: bytes, where: str) -> list[tuple[int, float, int]]:
    """``timestamp value step`` per line (MLflow before 1.0: no step, so 0)."""
    parts = data.split()
    if len(parts) == 3 * (data.count(b"\n") + (not data.endswith(b"\n"))):  # the usual: 3 words a line
        try:
            return list(zip(map(int, parts[0::3]), map(float, parts[1::3]), map(int, parts[2::3])))
        except ValueError:
            pass  # the line by line reading below names the bad line
    values: list[tuple[int, float, int]] = []
    for line in data.split(b"\n"):
        parts = line.split()
        if not parts:
            continue
        try:
            values.append((int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 0))
        except (ValueError, IndexError):
            raise ForeignFormatError(where, f"not an MLflow metric line: {line[:80]!r}") from None
    return values


# -- the sqlite store ---------------------------------------------------------------


def _sqlite_runs(path: Path, shown: str, report: MlflowReport) -> list[MlflowRun]:
    from urllib.parse import quote

    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ForeignFormatError(shown, f"cannot be opened as sqlite ({exc})") from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = {"experiments", "runs", "params", "tags", "metrics"} - tables
        if missing:
            raise ForeignFormatError(shown, f"not an MLflow database (no {', '.join(sorted(missing))} table)")
        experiments: dict[str, tuple[str, bool]] = {}
        for exp_id, name, stage in conn.execute("SELECT experiment_id, name, lifecycle_stage FROM experiments"):
            deleted = stage == "deleted"
            experiments[str(exp_id)] = (str(name), deleted)
            report.experiments += not deleted
        runs: dict[str, MlflowRun] = {}
        rows = conn.execute(
            "SELECT run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
            " end_time, lifecycle_stage, artifact_uri, experiment_id FROM runs"
        )
        for rid, name, stype, sname, entry, user, status, start, end, stage, uri, exp_id in rows:
            exp_name, exp_deleted = experiments.get(str(exp_id), (str(exp_id), False))
            if exp_deleted or stage == "deleted":
                report.deleted += 1
                continue
            runs[rid] = MlflowRun(
                run_id=str(rid),
                experiment_id=str(exp_id),
                experiment=exp_name,
                name=str(name or ""),
                status=str(status or ""),
                start_ms=_int_or_none(start),
                end_ms=_int_or_none(end),
                user=str(user or ""),
                source_type=str(stype or ""),
                source_name=str(sname or ""),
                entry_point=str(entry or ""),
                artifact_uri=str(uri or ""),
            )
        for rid, key, value in conn.execute("SELECT run_uuid, key, value FROM params"):
            run = runs.get(rid)
            if run is not None:
                run.params[key] = str(value)
        for rid, key, value in conn.execute("SELECT run_uuid, key, value FROM tags"):
            run = runs.get(rid)
            if run is not None and value is not None:
                run.tags[key] = str(value)
        nan = float("nan")
        for rid, key, value, ts, step, is_nan in conn.execute(
            "SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics ORDER BY rowid"
        ):
            run = runs.get(rid)
            if run is not None:
                run.metrics.setdefault(key, []).append((int(ts), nan if is_nan else float(value), int(step)))
    except sqlite3.DatabaseError as exc:
        raise ForeignFormatError(shown, f"cannot be read as an MLflow database ({exc})") from None
    except (TypeError, ValueError) as exc:  # a NULL or a text where MLflow's schema has a number
        raise ForeignFormatError(shown, f"holds a value MLflow's schema does not allow ({exc})") from None
    finally:
        conn.close()
    return list(runs.values())


# -- runs into records --------------------------------------------------------------


def _time(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _param(text: str) -> Any:
    """MLflow's text of a param, as the value it came from when ``str`` gives it back."""
    if text in ("True", "False"):
        return text == "True"
    if _INT.match(text):
        number = int(text)
        return number if str(number) == text else text
    try:
        value = float(text)
    except ValueError:
        return text
    return value if repr(value) == text and value == value and value not in (float("inf"), float("-inf")) else text


def _stage(run: MlflowRun) -> str:
    if run.entry_point:
        return run.entry_point
    source = run.tags.get("mlflow.source.name") or run.source_name
    base = source.split("#", 1)[0].rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    return stem.strip() or "run"


def _latest(values: list[tuple[int, float, int]]) -> float:
    """MLflow's latest value of a metric: the highest step, then the latest timestamp."""
    best = values[0]
    for item in values[1:]:
        if (item[2], item[0]) >= (best[2], best[0]):
            best = item
    return best[1]


class _Artifacts:
    """The run's artifact directory on this machine, its top-level entries hashed."""

    def __init__(self, repo: Repo, kind: str, store: Path, hasher: Any) -> None:
        self.root = repo.root.resolve()
        self.kind = kind
        self.store = store.resolve()
        self.hasher = hasher
        self.base = str(self.store if kind == "file" else self.store.parent / "mlruns")

    def directory(self, run: MlflowRun) -> str | None:
        candidates: list[str] = []
        uri = run.artifact_uri
        if uri.startswith("file:"):
            candidates.append(unquote(urlparse(uri).path))
        elif uri and not _SCHEME.match(uri):
            candidates.append(uri if os.path.isabs(uri) else os.path.join(self.store.parent, uri))
        base = self.base
        candidates.append(f"{base}/{run.experiment_id}/{run.run_id}/artifacts")  # a store that was moved
        for path in candidates:
            if os.path.isdir(path):
                return path
        return None

    def of(self, run: MlflowRun) -> list[dict[str, Any]]:
        top = self.directory(run)
        if top is None:
            return []
        found: list[dict[str, Any]] = []
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            full = Path(entry.path).resolve()
            is_dir = entry.is_dir()
            try:
                inside = full.relative_to(self.root).as_posix()
            except ValueError:
                inside = None
            shown = inside or entry.name
            try:
                digest = self.hasher.hash_path(full, shown)
            except PathError:
                continue
            model = (is_dir and (full / "MLmodel").is_file()) or entry.name.lower().endswith(MODEL_SUFFIXES)
            art: dict[str, Any] = {
                "path": shown,
                "hash": digest.hash,
                "size": digest.size,
                "type": "model" if model else "other",
                "kind": ("dir" if is_dir else "file") if inside else "external",
                "props": {"files": digest.files} if is_dir else {},
                "source": {"mlflow": {"artifact_path": entry.name, "run_id": run.run_id}},
            }
            found.append(art)
        return found


def _record(run: MlflowRun, redactor: Any, outputs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The execution record of ``run``, and the tags cmfgit can hold."""
    tags: dict[str, str] = {}
    kept_tags: dict[str, str] = {}
    for key, value in sorted(run.tags.items()):
        if is_name(key) and not key.startswith("mlflow."):
            tags[key] = value
        else:
            kept_tags[key] = value
    metrics: dict[str, int | float] = {}
    steps: dict[str, list[list[int | float]]] = {}
    for key in sorted(run.metrics):
        values = run.metrics[key]
        if not values:
            continue
        metrics[key] = _latest(values)
        if len(values) > 1 or values[0][2] != 0:
            steps[key] = [[step, value] for _ts, value, step in values]
    commit = run.tags.get("mlflow.source.git.commit", "").strip().lower()
    repo_url = run.tags.get("mlflow.source.git.repoURL") or run.tags.get("mlflow.gitRepoURL")
    exit_code = _EXIT.get(run.status)
    running = run.status in ("RUNNING", "SCHEDULED")
    source: dict[str, Any] = {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "experiment": run.experiment,
        "run_name": run.name,
        "status": run.status,
        "source_type": run.source_type,
        "source_name": run.source_name,
        "artifact_uri": redactor.text(run.artifact_uri),
    }
    if run.entry_point:
        source["entry_point"] = run.entry_point
    if kept_tags:
        source["tags"] = redactor.mapping(kept_tags)
    start = _time(run.start_ms) or _time(run.end_ms) or _time(0)
    stage = _stage(run)
    record: dict[str, Any] = {
        "schema": schema.EXECUTION,
        "uuid": f"mlflow-{run.run_id}",
        "pipeline": run.experiment or f"experiment-{run.experiment_id}",
        "stage": stage,
        "type": stage,
        "command": [],
        "params": redactor.mapping({k: _param(v) for k, v in sorted(run.params.items())}),
        "started_at": start,
        "ended_at": None if running else _time(run.end_ms),
        "exit_code": None if running else exit_code,
        "site": "mlflow",
        "host": "",
        "user": run.user,
        "git": {
            "commit": commit if _HEX40.match(commit) else None,
            "branch": run.tags.get("mlflow.source.git.branch") or None,
            "dirty": False,
            "remote": redactor.text(repo_url) if repo_url else None,
            "tree": None,
        },
        "env": {"python": "", "platform": ""},
        "inputs": [],
        "outputs": outputs,
        "metrics": metrics,
        "source": {"mlflow": source},
    }
    if exit_code not in (0, None) and not running:
        record["error"] = f"MLflow status {run.status}"
    if steps:
        record["step_metrics"] = steps
    return record, redactor.mapping(tags)


_DELETED = MlflowRun("", "", "", "", "", None, None, "", "", "", "", "")  # _read_run's deleted run

# What the conversion needs, set before the worker processes fork (they inherit it).
_JOB: dict[str, Any] = {}
PARALLEL_MIN = 1000  # runs from which two worker processes pay for their start


def _convert(item: Any) -> tuple[Any, ...] | None:
    """One run, read (file store) or given (sqlite), as plain values (see ``_Row``); None for
    a run of another experiment, ``("deleted",)`` for a deleted run."""
    job = _JOB
    run = _read_run(item, job["shown"]) if job["kind"] == "file" else item
    if run is None:
        return None
    if run is _DELETED:
        return ("deleted",)
    if job["pipeline"] is not None and run.experiment != job["pipeline"]:
        return None
    outputs = job["artifacts"].of(run) if job["artifacts"] is not None else []
    record, tags = _record(run, job["redactor"], outputs)
    try:
        schema.validate(record, "imported execution")
        data, rid = canonical.encode(record)
    except RecordError as exc:
        raise ForeignFormatError(f"{job['shown']}: run {run.run_id}", f"cannot be imported: {exc}") from None
    key = (run.experiment_id, run.start_ms or 0, run.run_id)
    note = _tag_note(rid, tags, record["started_at"], run.user, job["shown"]) if tags else None
    return (key, rid, data, record["uuid"], record["pipeline"], len(outputs), _rows(rid, data, record), note, tags,
            record["started_at"], run.user)  # fmt: skip


def _rows(rid: str, data: bytes, record: dict[str, Any]) -> tuple[Any, ...]:
    """What the query index stores of a record, as plain values (``index.derive``)."""
    from cmfgit import index

    d = index.derive(rid, data, record)
    return (d.id, d.kind, d.execution, d.events, d.aliases, d.kv, d.annotation, d.retracts)


def _tag_note(target: str, tags: dict[str, str], at: str, user: str, shown: str) -> tuple[str, bytes, tuple[Any, ...]]:
    """(id, bytes, index rows) of the annotation that gives ``target`` the run's tags."""
    note: dict[str, Any] = {"schema": schema.ANNOTATION, "target": target, "kind": TAG_KIND, "at": at, "body": tags}
    note["site"] = "mlflow"
    if user:
        note["user"] = user
    try:
        schema.validate(note, "imported tags")
        data, nid = canonical.encode(note)
    except RecordError as exc:
        raise ForeignFormatError(f"{shown}: the tags of {target[:12]}", str(exc)) from None
    return nid, data, _rows(nid, data, note)


def _open_hasher() -> None:
    job = _JOB
    if job.get("artifacts") is not None and job.get("hasher") is None:
        from cmfgit.hashing import Hasher

        job["hasher"] = Hasher(job["hash_cache"], progress=False)  # one per process, never inherited
        job["artifacts"].hasher = job["hasher"]


def _convert_chunk(bounds: tuple[int, int]) -> bytes:
    """:func:`_convert` of ``_JOB['items'][start:end]`` in a worker: marshalled rows (plain
    values move several times faster than pickled objects), or the error as text."""
    import marshal

    from cmfgit.errors import CmfgitError

    job = _JOB
    _open_hasher()
    try:
        rows = [_convert(item) for item in job["items"][bounds[0] : bounds[1]]]
    except CmfgitError as exc:
        return marshal.dumps(("error", str(exc), exc.exit_code))
    return marshal.dumps(("ok", rows))


def _convert_all(items: list[Any]) -> list[Any]:
    import marshal

    from cmfgit.errors import CmfgitError

    _JOB["items"] = items
    n = len(items)
    jobs = min(2, os.cpu_count() or 1)
    if n < PARALLEL_MIN or jobs < 2:
        _open_hasher()
        return [_convert(item) for item in items]
    else:
        import multiprocessing

        step = max(200, n // (jobs * 8))
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            chunks = pool.map(_convert_chunk, [(i, min(n, i + step)) for i in range(0, n, step)])
    rows: list[Any] = []
    for blob in chunks:
        status, *rest = marshal.loads(blob)
        if status == "error":
            err = CmfgitError(rest[0])
            err.exit_code = rest[1]
            raise err
        rows += rest[0]
    return rows


def import_mlflow(
    repo: Repo, spec: str | None = None, pipeline: str | None = None, artifacts: bool = True
) -> MlflowReport:
    """Import the runs of the MLflow store ``spec`` names (see the module's docstring);
    ``pipeline``: only the experiment of that name."""
    import gc

    # Tens of thousands of small dicts and lists, none in a cycle: the cyclic collector
    # would walk them again and again (a third of the time of an import).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(repo, spec, pipeline, artifacts)
    finally:
        if collecting:
            gc.enable()


def _import(repo: Repo, spec: str | None, pipeline: str | None, artifacts: bool) -> MlflowReport:
    from cmfgit.cmf_import import write_batch, write_new
    from cmfgit.config import load_config
    from cmfgit.redact import Redactor

    kind, path, shown = locate(spec)
    report = MlflowReport(shown, kind)
    items: list[Any] = _file_store_dirs(path, shown, report) if kind == "file" else _sqlite_runs(path, shown, report)
    config = load_config(repo)
    _JOB.clear()
    _JOB.update(
        kind=kind,
        shown=shown,
        pipeline=pipeline,
        redactor=Redactor(config.redact_keys, config.redact_values),
        artifacts=_Artifacts(repo, kind, path, None) if artifacts else None,
        hash_cache=repo.state_dir / "hashcache.sqlite",
        hasher=None,
    )
    try:
        rows = _convert_all(items)
    finally:
        hasher = _JOB.get("hasher")
        if hasher is not None:
            hasher.close()
        _JOB.clear()
    from cmfgit.index import Derived

    report.deleted += sum(1 for row in rows if row is not None and len(row) == 1)
    found = sorted((row for row in rows if row is not None and len(row) > 1), key=lambda row: row[0])
    batch = [(row[1], row[2], row[3]) for row in found]
    known = {row[1]: Derived(*row[6]) for row in found}
    for row in found:
        report.runs += 1
        report.artifacts += row[5]
        report.pipelines[row[4]] = report.pipelines.get(row[4], 0) + 1
    if pipeline is not None and not report.runs:
        raise UsageError(f"{shown}: no run of an experiment named '{pipeline}'")
    write_batch(repo, batch, report, known)
    notes: dict[str, bytes] = {}
    for target, row in zip(report.ids, found):
        note = row[7]
        if note is None:
            continue
        if target != row[1]:  # the run was imported before with other content: that record's tags
            note = _tag_note(target, row[8], row[9], row[10], shown)
        notes[note[0]] = note[1]
        known[note[0]] = Derived(*note[2])
    report.tags = write_new(repo, notes, known)
    return report
