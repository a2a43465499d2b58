"""``cmfgit.compat.Cmf``: HPE CMF's ``Cmf`` logging API, writing cmfgit records.

A CMF script ports by changing one line::

    from cmflib.cmf import Cmf        # before
    from cmfgit.compat import Cmf     # after

The methods keep cmflib's names and argument names. Each execution becomes
one ``cmfgit/execution/1`` record (written by ``finalize()``, by the next
``create_execution()``, or when the process exits), built by the same
recorder as ``cmfgit log-run``. No MLMD, no DVC and no pandas: artifacts are
identified by blake3 with their DVC-style md5 as an alias, step metrics and
data slices are CSV files under ``cmf_artifacts/``, and CMF's ids, type names
and properties go to the record's ``source.cmf`` so that ``cmfgit export
--format cmf-json`` gives back what cmflib would have written.

Differences from cmflib (bugs fixed, see docs/coming-from-cmf.md): float
custom properties stay floats; ``graph=True`` needs no neo4j (``cmfgit
lineage`` is always there); a missing file is an error rather than a
silently skipped artifact; methods return small plain objects, not MLMD
protobufs.
"""

from __future__ import annotations

import atexit
import csv
import hashlib
import io
import os
import shlex
import sys
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cmfgit import cmf_format, envinfo, gitstate
from cmfgit.config import load_config
from cmfgit.errors import PathError, UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.hashing import Hasher
from cmfgit.recorder import Artifact as _Artifact
from cmfgit.recorder import Recorder, flatten
from cmfgit.repo import open_repo

__all__ = ["Cmf", "Context", "Execution", "Artifact"]


@dataclass
class Context:
    """What cmflib returns as an MLMD Context (plain values, not protobufs)."""

    id: int
    name: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    """What cmflib returns as an MLMD Execution. ``record_id`` is set once it is written."""

    id: int
    name: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None


@dataclass
class Artifact:
    """What cmflib returns as an MLMD Artifact; ``hash`` is the cmfgit identity."""

    id: int
    name: str
    uri: str
    type: str
    hash: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)


def _warn(message: str) -> None:
    print(f"cmfgit: warning: {message}", file=sys.stderr)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _csv(header: list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in header])
    return out.getvalue().encode("utf-8")


_TEXT_COLUMNS = frozenset({"Path", "hash", "blake3"})  # never numbers, whatever they look like


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV that ``_csv`` wrote; cells typed back (int, float, bool, None)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: v if k in _TEXT_COLUMNS else _cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _split_command(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return [cmd]


class _Open:
    """The execution being recorded, until it is written."""

    def __init__(self, recorder: Recorder, execution: Execution, stage: Context, cmd: str | None) -> None:
        self.recorder = recorder
        self.execution = execution
        self.stage = stage  # the stage it was started in
        self.cmd = cmd
        self.order = 0  # CMF event order across inputs and outputs

    def next_order(self) -> int:
        self.order += 1
        return self.order - 1


class Cmf:
    """CMF's metadata writer; see the module docstring. Arguments as in cmflib."""

    ARTIFACTS_PATH = "cmf_artifacts"
    DATASLICE_PATH = "dataslice"
    METRICS_PATH = "metrics"

    def __init__(
        self,
        filepath: str = "mlmd",
        pipeline_name: str = "",
        custom_properties: dict[str, Any] | None = None,
        graph: bool = False,
        is_server: bool = False,
    ) -> None:
        if is_server:
            raise UsageError("is_server=True (a cmf-server's Postgres store) is not supported by cmfgit.compat")
        if graph:
            _warn("graph=True: cmfgit needs no neo4j; use 'cmfgit lineage' for the graph")
        # cmflib works relative to the directory of the metadata file ('mlmd' -> the working directory).
        self.base = Path(os.path.dirname(os.path.abspath(filepath)))
        self.repo = open_repo(self.base)
        self.config = load_config(self.repo)
        self.hasher = Hasher(self.repo.state_dir / "hashcache.sqlite", progress=False)
        self.filepath = filepath
        self.pipeline_name = pipeline_name or os.path.basename(os.getcwd())
        self.graph = graph
        self._ids = {"context": 0, "execution": 0, "artifact": 0}
        self.parent_context = Context(
            self._next("context"),
            self.pipeline_name,
            cmf_format.PIPELINE_TYPE,
            {"Pipeline": self.pipeline_name},
            dict(custom_properties or {}),
        )
        self.child_context: Context | None = None
        self.execution: Execution | None = None
        self.metrics: dict[str, dict[int, dict[str, Any]]] = {}
        self._stage: str | None = None
        self._open: _Open | None = None

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # -- contexts ---------------------------------------------------------------

    def create_context(self, pipeline_stage: str, custom_properties: dict[str, Any] | None = None) -> Context:
        """Start (or reuse) the stage ``pipeline_stage`` of this pipeline."""
        name = f"{self.pipeline_name}/{pipeline_stage}"
        if self.child_context is None or self.child_context.name != name:
            self.child_context = Context(
                self._next("context"), name, cmf_format.STAGE_TYPE, {"Pipeline_Stage": name}, {}
            )
        self.child_context.custom_properties.update(custom_properties or {})
        self._stage = pipeline_stage
        return self.child_context

    def update_context(
        self,
        type_name: str,
        context_name: str,
        context_id: int,
        properties: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
    ) -> Context:
        """Merge properties into this pipeline's or the current stage's context (values keep their types)."""
        for ctx in (self.child_context, self.parent_context):
            if ctx is not None and (ctx.id == context_id or ctx.name == context_name):
                ctx.properties.update(properties or {})
                ctx.custom_properties.update(custom_properties or {})
                return ctx
        raise UsageError(
            f"cmfgit.compat can update only this Cmf object's pipeline or current stage, not '{context_name}'"
        )

    # -- executions ---------------------------------------------------------------

    def create_execution(
        self,
        execution_type: str,
        custom_properties: dict[str, Any] | None = None,
        cmd: str | None = None,
        create_new_execution: bool = True,
    ) -> Execution:
        """Start recording an execution of the current stage; the previous one is written first."""
        if not create_new_execution and self._open is not None and self._open.execution.name == execution_type:
            self.update_execution(self._open.execution.id, custom_properties)
            return self._open.execution
        self._close(0)
        if self.child_context is None:
            self.create_context(self._script_name())
        assert self.child_context is not None and self._stage is not None
        params = dict(custom_properties or {})
        command = list(sys.argv) if cmd is None else _split_command(cmd)
        recorder = Recorder(
            self.repo,
            pipeline=self.pipeline_name,
            stage=self._stage,
            execution_type=execution_type,
            params=params,
            command=command,
            cwd=self.base,
            config=self.config,
            hasher=self.hasher,
            reuse_git_state=True,
            executable=sys.executable,
            progress=False,
        )
        recorder.start()
        exec_uuid = str(uuidlib.uuid1())
        recorder.extra["uuid"] = exec_uuid
        git = gitstate.capture(self.repo, reuse=True).state
        properties = {
            "Context_ID": self.child_context.id,
            "Context_Type": self.child_context.name,
            "Execution": str(list(sys.argv)) if cmd is None else cmd,
            "Execution_type_name": self.child_context.name,
            "Execution_uuid": exec_uuid,
            "Git_End_Commit": "",
            "Git_Repo": git.remote or "",
            "Git_Start_Commit": git.commit or "",
            "Pipeline_Type": self.pipeline_name,
            "Pipeline_id": self.parent_context.id,
        }
        name = "" if create_new_execution else execution_type
        self.execution = Execution(self._next("execution"), name, execution_type, properties, params)
        self._open = _Open(recorder, self.execution, self.child_context, cmd)
        _recording.add(self)  # a strong reference: the execution is written at exit even if this object is dropped
        env_file = self._write_python_env()
        self.execution.custom_properties["Python_Env"] = env_file
        self.log_python_env(env_file)
        return self.execution

    def update_execution(self, execution_id: int, custom_properties: dict[str, Any] | None = None) -> Execution:
        """Merge custom properties into the execution being recorded. Values keep their types:
        cmflib turned every non-int into a string (0.25 -> "0.25"); cmfgit does not."""
        run = self._open
        if run is None or run.execution.id != execution_id:
            current = f"(the current one is {run.execution.id})" if run else "(none is being recorded)"
            raise UsageError(f"cmfgit.compat can update only the execution being recorded {current}")
        values = dict(custom_properties or {})
        run.recorder.params.update(flatten(values))
        run.execution.custom_properties.update(values)
        return run.execution

    def finalize(self) -> str | None:
        """Write the execution being recorded; returns its record id."""
        return self._close(0)

    # -- artifacts ---------------------------------------------------------------

    def log_dataset(
        self,
        url: str,
        event: str,
        custom_properties: dict[str, Any] | None = None,
        label: str | None = None,
        label_properties: dict[str, Any] | None = None,
        external: bool = False,
    ) -> Artifact:
        """Record the file or directory ``url`` as an input or output dataset."""
        art = self._log(url, event, "dataset", custom_properties, {})
        if label:
            self.log_label(label, url, label_properties)
        return art

    def log_model(
        self,
        path: str,
        event: str,
        model_framework: str = "Default",
        model_type: str = "Default",
        model_name: str = "Default",
        custom_properties: dict[str, Any] | None = None,
    ) -> Artifact:
        """Record a model file; framework, type and name are kept as CMF properties."""
        properties = {
            "model_framework": str(model_framework),
            "model_type": str(model_type),
            "model_name": str(model_name),
        }
        return self._log(path, event, "model", custom_properties, properties)

    def log_python_env(self, url: str) -> Artifact:
        """Record the environment file ``url`` (a package list) as an input."""
        return self._log(url, "input", "environment", None, {})

    def log_label(self, url: str, dataset_name: str, custom_properties: dict[str, Any] | None = None) -> Artifact:
        """Record the label file ``url`` of the dataset ``dataset_name`` as an input."""
        run = self._run()
        dataset = self._file(dataset_name)
        label_md5 = _md5(self._file(url))
        dataset_md5 = _md5(dataset)
        rel = self.repo.relpath(dataset, self.base)
        for art in run.recorder.inputs + run.recorder.outputs:
            if art.path == rel:
                art.props.update(labels=url, labels_uri=f"{url}:{label_md5}")
        props = {**(custom_properties or {}), "dataset_uri": dataset_md5}
        return self._log(url, "input", "label", props, {"url": f"{url}:{label_md5}"})

    def log_execution_metrics(self, metrics_name: str, custom_properties: dict[str, Any] | None = None) -> Artifact:
        """Execution (coarse) metrics: kept in the record's metrics and as a CMF Metrics artifact."""
        run = self._run()
        values = dict(custom_properties or {})
        run.recorder.add_metrics(values, where=metrics_name)
        uri = str(uuidlib.uuid1())
        name = f"{metrics_name}:{uri}:{run.execution.id}"
        source = {"cmf": {"name": name, "uri": uri, "order": run.next_order(), "properties": {"metrics_name": name}}}
        digest = cmf_format.hash_of_uri(uri, name)
        art = _Artifact(metrics_name, "metrics", values, digest, None, "external", source=source)
        run.recorder.outputs.append(art)
        return self._returned(art, name, uri, "Metrics", {"metrics_name": name})

    def log_metric(self, metrics_name: str, custom_properties: dict[str, Any] | None = None) -> None:
        """One row (step) of the fine-grained metrics ``metrics_name``; written by :meth:`commit_metrics`."""
        rows = self.metrics.setdefault(metrics_name, {})
        rows[max(rows, default=0) + 1] = dict(custom_properties or {})

    def commit_metrics(self, metrics_name: str) -> Artifact:
        """Write the rows of ``metrics_name`` as CSV and record it as a step metrics output."""
        run = self._run()
        rows = self.metrics.get(metrics_name)
        if not rows:
            raise UsageError(f"no metrics logged as '{metrics_name}': call log_metric() first")
        header = ["SequenceNumber"]
        for values in rows.values():
            header.extend(k for k in values if k not in header)
        table = [{"SequenceNumber": seq, **values} for seq, values in sorted(rows.items())]
        path = self._artifact_dir(run, self.METRICS_PATH) / f"{metrics_name}.csv"
        atomic_write(path, _csv(header, table))
        for seq, values in sorted(rows.items()):
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    run.recorder.add_step_metric(f"{metrics_name}.{key}", value, seq)
        return self._log(str(path), "output", "step_metrics", None, {})

    def create_dataslice(self, name: str) -> DataSlice:
        """A named subset of files; add them with ``add_data`` and write it with ``commit``."""
        return DataSlice(name, self)

    def read_dataslice(self, name: str) -> Any:
        """The rows of dataslice ``name``: a pandas DataFrame indexed by ``Path`` when
        pandas is installed (as cmflib returns), else a list of dicts. Numbers and
        booleans come back typed (the file is CSV)."""
        rows = _read_csv(self._dataslice_path(name))
        try:
            import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            return rows
        frame = pd.DataFrame(rows)
        return frame.set_index("Path") if "Path" in frame.columns else frame

    def update_dataslice(self, name: str, record: str, custom_properties: dict[str, Any]) -> None:
        """Set ``custom_properties`` on the row of file ``record`` in dataslice ``name``.

        The file is rewritten, and (unlike cmflib, whose hash then goes stale) the
        new version is recorded as an output of the current execution.
        """
        path = self._dataslice_path(name)
        rows = _read_csv(path)
        for row in rows:
            if row.get("Path") == record:
                row.update(flatten(custom_properties, what="custom_properties"))
                break
        else:
            raise UsageError(f"dataslice '{name}' has no record '{record}'")
        header: list[str] = []
        for row in rows:
            header.extend(k for k in row if k not in header)
        atomic_write(path, _csv(header, rows))
        self._log(str(path), "output", "dataslice", None, {})

    def log_dvc_lock(self, file_path: str) -> str:
        """Commit ``file_path`` (DVC's lock file) to git, as cmflib does; returns the
        commit id ('' when the file was already committed as it is)."""
        from cmfgit.commit import commit_metadata

        run = self._open
        if run is None:
            raise UsageError("log_dvc_lock needs an execution: call create_execution first")
        rel = self.repo.relpath(self._file(file_path), self.base)
        return commit_metadata(self.repo, f"committing {rel}-{run.execution.id}", [rel]) or ""

    # -- helpers -----------------------------------------------------------------

    def _script_name(self) -> str:
        script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        return os.path.splitext(script)[0] or "run"

    def _run(self) -> _Open:
        """The execution being recorded; like cmflib, one is created (named after the script) if needed."""
        if self._open is None:
            self.create_execution(self._script_name())
        assert self._open is not None
        return self._open

    def _file(self, path: str) -> Path:
        full = Path(path) if os.path.isabs(path) else self.base / path
        if not full.is_file():
            raise PathError(path, "does not exist or is not a file")
        return full

    def _dataslice_path(self, name: str) -> Path:
        """The file of dataslice ``name``: the current execution's, else the newest
        one of that name under ``cmf_artifacts/`` (cmflib looks only at the current)."""
        file = name if name.endswith(".csv") else f"{name}.csv"
        if self._open is not None:
            mine = self._artifact_dir(self._open, self.DATASLICE_PATH) / file
            if mine.is_file():
                return mine
        found = sorted(
            (self.base / self.ARTIFACTS_PATH).glob(f"*/{self.DATASLICE_PATH}/{file}"),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            raise UsageError(f"no dataslice named '{name}' (create_dataslice(...).commit() writes one)")
        return found[-1]

    def _artifact_dir(self, run: _Open, kind: str) -> Path:
        return self.base / self.ARTIFACTS_PATH / str(run.execution.properties["Execution_uuid"]) / kind

    def _write_python_env(self) -> str:
        listing = "".join(f"{p}\n" for p in envinfo.installed_packages()).encode("utf-8")
        name = f"python_env_{hashlib.md5(listing, usedforsecurity=False).hexdigest()}.txt"
        path = self.base / self.ARTIFACTS_PATH / name
        if not path.exists():
            atomic_write(path, listing)
        return f"{self.ARTIFACTS_PATH}/{name}"

    def _log(
        self,
        path: str,
        event: str,
        kind: str,
        custom_properties: dict[str, Any] | None,
        properties: dict[str, Any],
    ) -> Artifact:
        run = self._run()
        rec = run.recorder
        is_input = str(event).lower() == "input"
        cache = None if is_input else rec._output_cache()  # outputs enter the data cache (data.cache_outputs)
        art = rec.hash_into(rec.artifact(path, kind, custom_properties), missing_ok=False, cache=cache)
        assert art.hash is not None
        uri = cmf_format.uri_of_hash(art.hash)
        if art.kind == "file":
            uri = _md5(self.repo.root / art.path)
            art.aliases = [f"md5:{uri}"]
        elif art.kind == "dir":  # CMF's identity of a directory: DVC's <md5 of its listing>.dir
            from cmfgit.data.dvclayout import DIR, tree_md5

            listing = tree_md5(self.repo.root / art.path)
            uri = listing + DIR
            art.aliases = [f"md5:{listing}"]
        source: dict[str, Any] = {"order": run.next_order()}
        if properties:
            source["properties"] = properties
        art.source = {"cmf": source}
        side = rec.inputs if is_input else rec.outputs
        for i, old in enumerate(side):
            if old.path == art.path and old.hash == art.hash:
                art.props = {**old.props, **art.props}
                art.source["cmf"]["order"] = old.source.get("cmf", {}).get("order", source["order"])
                side[i] = art
                break
        else:
            side.append(art)
        ctype = cmf_format.cmf_type(kind)
        name = f"{art.path}:{uri}:{run.execution.id}" if kind == "model" else f"{art.path}:{uri}"
        return self._returned(art, name, uri, ctype, properties)

    def _returned(self, art: _Artifact, name: str, uri: str, ctype: str, properties: dict[str, Any]) -> Artifact:
        return Artifact(self._next("artifact"), name, uri, ctype, str(art.hash), dict(properties), dict(art.props))

    def _close(self, exit_code: int | None, error: str | None = None) -> str | None:
        run, self._open = self._open, None
        _recording.discard(self)
        if run is None:
            return None
        red = run.recorder.redactor
        cmf: dict[str, Any] = {
            "pipeline": {"name": self.parent_context.name},
            "stage": {"name": run.stage.name},
        }
        for key, ctx in (("pipeline", self.parent_context), ("stage", run.stage)):
            if ctx.custom_properties:
                cmf[key]["custom_properties"] = red.mapping(ctx.custom_properties)
        execution: dict[str, Any] = {}
        if run.execution.name:
            execution["name"] = run.execution.name
        if run.cmd is not None:
            argv = _split_command(run.cmd)
            shown = run.cmd if red.argv(argv) == argv else shlex.join(red.argv(argv))
            execution["properties"] = {"Execution": red.text(shown)}
        if execution:
            cmf["execution"] = execution
        run.recorder.extra["source"] = {"cmf": cmf}
        rid = run.recorder.finish(exit_code, error)
        for warning in run.recorder.warnings:
            _warn(warning)
        run.execution.record_id = rid
        return rid

    def __enter__(self) -> Cmf:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._close(0)
        else:
            self._close(130 if issubclass(exc_type, KeyboardInterrupt) else 1, f"{exc_type.__name__}: {exc}")


class DataSlice:
    """A named set of files with per-file properties, written as a CSV artifact (cmflib's DataSlice)."""

    def __init__(self, name: str, writer: Cmf) -> None:
        self.name = name
        self.writer = writer
        self.props: dict[str, dict[str, Any]] = {}

    def add_data(self, path: str, custom_properties: dict[str, Any] | None = None) -> None:
        """Add the file ``path`` (it must exist) with its properties."""
        full = self.writer._file(path)
        rel = self.writer.repo.relpath(full, self.writer.base)
        digest = self.writer.hasher.hash_path(full, rel)
        self.props[rel] = {"hash": _md5(full), "blake3": digest.hash, **(custom_properties or {})}

    def commit(self, custom_properties: dict[str, Any] | None = None) -> Artifact:
        """Write the slice as ``cmf_artifacts/<execution uuid>/dataslice/<name>.csv`` and record it as an output."""
        run = self.writer._run()
        header = ["Path", "hash", "blake3"]
        for values in self.props.values():
            header.extend(k for k in values if k not in header)
        table = [{"Path": path, **values} for path, values in self.props.items()]
        path = self.writer._artifact_dir(run, self.writer.DATASLICE_PATH) / f"{self.name}.csv"
        atomic_write(path, _csv(header, table))
        return self.writer._log(str(path), "output", "dataslice", custom_properties, {})


# -- executions left open when the process ends are written, marked failed after an uncaught exception --

_recording: set[Cmf] = set()
_crash: dict[str, str] = {}
_previous_hook = sys.excepthook


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _crash["error"] = f"{exc_type.__name__}: {exc}"
    _crash["code"] = "130" if issubclass(exc_type, KeyboardInterrupt) else "1"
    _previous_hook(exc_type, exc, tb)


def _at_exit() -> None:
    for writer in list(_recording):
        try:
            writer._close(int(_crash.get("code", "0")), _crash.get("error"))
        except Exception as exc:  # at exit there is no caller left to raise to
            _warn(f"could not write the open execution: {exc}")


sys.excepthook = _excepthook
atexit.register(_at_exit)
