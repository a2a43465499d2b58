"""``cmfgit.compat.Cmf``: HPE CMF's ``Cmf`` logging API, writing cmfgit records.

A CMF script ports by changing one line::

    from cmflib.cmf import Cmf        # before
    from cmfgit.compat import Cmf     # after

The methods keep cmflib's names and argument names. Each execution becomes
a ``cmfgit/execution/1`` record built by the same recorder as ``cmfgit
log-run``, written by ``finalize()`` (which, as cmflib's, only commits: the
execution stays current), by the next ``create_execution()``, or when the
process exits. What CMF changes in place (a reused execution, logging after
``finalize()``) becomes more records, parts that readers fold
(:mod:`cmfgit.cmf_parts`). cmflib's module-level commands (``metadata_push``
...) are here too (:mod:`cmfgit.compat_commands`). No MLMD and no DVC: artifacts are
identified by blake3 with their DVC-style md5 as an alias, step metrics and
data slices are cmflib's parquet files under ``cmf_artifacts/`` (pandas and
pyarrow are needed for those calls only, :mod:`cmfgit.cmf_tables`), and CMF's
ids, type names and properties go to the record's ``source.cmf`` so that
``cmfgit export --format cmf-json`` gives back what cmflib would have written.

Differences from cmflib (bugs fixed, see docs/coming-from-cmf.md): float
custom properties stay floats; ``graph=True`` needs no neo4j (``cmfgit
lineage`` is always there); a missing file is an error rather than a
silently skipped artifact; methods return small plain objects, not MLMD
protobufs.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shlex
import sys
import uuid as uuidlib
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from cmfgit import cmf_format, cmf_tables, envinfo, gitstate, schema
from cmfgit.cmf_objects import Artifact, Context, Execution
from cmfgit.compat_commands import (
    artifact_pull,
    artifact_push,
    cmf_init,
    metadata_export,
    metadata_pull,
    metadata_push,
)
from cmfgit.config import load_config
from cmfgit.errors import CmfgitError, PathError, UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.hashing import Hasher
from cmfgit.recorder import Artifact as _Artifact
from cmfgit.recorder import Recorder, flatten
from cmfgit.repo import open_repo

__all__ = [
    "Cmf",
    "Context",
    "Execution",
    "Artifact",
    "DataSlice",
    "cmf_init",
    "metadata_push",
    "metadata_pull",
    "metadata_export",
    "artifact_push",
    "artifact_pull",
]


def _warn(message: str) -> None:
    print(f"cmfgit: warning: {message}", file=sys.stderr)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


VALIDATION_OUTPUT = "Validation_output"  # cmflib's artifact type of log_validation_output
_INTERNAL_OUTPUT = 6  # MLMD's Event.Type of a validation output
_LISTED = frozenset({"labels", "labels_uri", "dataset_uri"})  # custom properties cmflib gathers, comma-separated


def _split_command(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return [cmd]


class _Open:
    """The execution being recorded, until it is written."""

    def __init__(
        self, recorder: Recorder, execution: Execution, stage: Context, cmd: str | None, continues: str | None = None
    ) -> None:
        self.recorder = recorder
        self.execution = execution
        self.stage = stage  # the stage it was started in
        self.cmd = cmd
        self.order = 0  # CMF event order across inputs and outputs
        self.uuids = [] if continues else [str(execution.properties["Execution_uuid"])]  # one per create_execution
        self.continues = continues  # the record this one continues (cmf_parts), if any
        self.changed = continues is None  # a continuation is written only if something was logged to it

    def next_order(self) -> int:
        self.order += 1
        return self.order - 1


class Cmf:
    """CMF's metadata writer; see the module docstring. Arguments as in cmflib."""

    DataSlice: ClassVar[type[_Slice]]  # cmflib's nested class: Cmf.DataSlice (set below)
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
        self._execution: Execution | None = None
        self.metrics: dict[str, dict[int, dict[str, Any]]] = {}
        self._stage: str | None = None
        self._open: _Open | None = None
        self._artifacts: dict[int, tuple[Artifact, _Artifact]] = {}  # id -> (returned object, its record artifact)

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
        """Start recording an execution of the current stage; the previous one is written first.

        With ``create_new_execution=False`` the execution is named ``execution_type``
        and reused: in this process it stays the same execution; in another process
        (or at another site) a record of the same name in the same stage is a part of
        it, which readers fold (docs/format.md, "Parts of one CMF execution")."""
        run = self._open
        if not create_new_execution and run is not None and run.execution.name == execution_type:
            new_uuid = str(uuidlib.uuid1())  # cmflib appends one uuid per create_execution call
            run.uuids.append(new_uuid)
            self.update_execution(run.execution.id, custom_properties)
            return run.execution
        self._close(0)
        if self.child_context is None:
            self.create_context(self._script_name())
        assert self.child_context is not None and self._stage is not None
        name = "" if create_new_execution else execution_type
        self._start(execution_type, dict(custom_properties or {}), cmd, name, None)
        assert self._open is not None
        env_file = self._write_python_env()
        self._open.execution.custom_properties["Python_Env"] = env_file
        self.log_python_env(env_file)
        return self._open.execution

    def _start(
        self, execution_type: str, params: dict[str, Any], cmd: str | None, name: str, continues: str | None
    ) -> _Open:
        assert self.child_context is not None and self._stage is not None
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
        execution = Execution(self._next("execution"), name, execution_type, properties, params)
        execution.pipeline, execution.stage, execution.record_id = self.pipeline_name, self._stage, continues
        self._execution = execution
        self._open = _Open(recorder, execution, self.child_context, cmd, continues)
        _recording.add(self)  # a strong reference: the execution is written at exit even if this object is dropped
        return self._open

    @property
    def execution(self) -> Execution | None:
        """The current execution (cmflib's attribute). Assigning an execution that was
        written before, by this process or another (``CmfQuery.get_all_exe_in_stage``
        gives them), makes it current again: what is logged next is recorded in a
        part that continues it."""
        return self._execution

    @execution.setter
    def execution(self, value: Execution | None) -> None:
        run = self._open
        if run is not None and value is run.execution:
            return
        if value is None:
            self._close(0)
            self._execution = None
            return
        target = getattr(value, "record_id", None)
        if not isinstance(target, str) or not target:
            raise UsageError(
                "cmfgit.compat can continue only an execution that was written (one from"
                " CmfQuery.get_all_exe_in_stage, or one of this Cmf after finalize())"
            )
        self._close(0)
        stage = str(getattr(value, "stage", "") or self._stage or self._script_name())
        pipeline = str(getattr(value, "pipeline", "") or self.pipeline_name)
        if pipeline != self.pipeline_name:
            raise UsageError(f"that execution is in pipeline '{pipeline}', this Cmf writes '{self.pipeline_name}'")
        self.create_context(stage)
        name = str(getattr(value, "name", "") or "")
        self._start(name or str(value.type), {}, None, name, target)
        assert self._open is not None
        self._open.execution.id = int(value.id)

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
        run.changed = True
        return run.execution

    def finalize(self) -> str | None:
        """Write what the current execution recorded so far (cmflib commits here); returns the
        record id. The execution stays current, as in cmflib: what is logged after this is
        written, as a part that continues it, by the next ``create_execution``, another
        ``finalize()`` or the end of the process."""
        run = self._open
        if run is None:
            return None
        if not run.changed:
            return run.execution.record_id
        rid = self._write(run, 0, None)
        rec = run.recorder
        first = run.execution.record_id or rid
        run.execution.record_id = first
        # The continuation: what the execution read still holds; outputs and metrics start afresh.
        rec.outputs, rec.metrics, rec.step_metrics = [], {}, {}
        rec.started_at = schema.utc_now()
        rec.extra = {"uuid": str(uuidlib.uuid1())}
        run.uuids, run.continues, run.changed = [], first, False
        return rid

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
        run.changed = True
        return self._returned(art, name, uri, "Metrics", {"metrics_name": name})

    def log_metric(self, metrics_name: str, custom_properties: dict[str, Any] | None = None) -> None:
        """One row (step) of the fine-grained metrics ``metrics_name``; written by :meth:`commit_metrics`."""
        rows = self.metrics.setdefault(metrics_name, {})
        rows[max(rows, default=0) + 1] = dict(custom_properties or {})

    def commit_metrics(self, metrics_name: str) -> Artifact:
        """Write the rows of ``metrics_name`` as cmflib does (parquet, indexed by ``SequenceNumber``,
        at ``cmf_artifacts/<execution uuid>/metrics/<name>``, no extension) and record it as a
        step metrics output; numeric values also go to the record's ``step_metrics``."""
        run = self._run()
        rows = self.metrics.get(metrics_name)
        if not rows:
            raise UsageError(f"no metrics logged as '{metrics_name}': call log_metric() first")
        data = cmf_tables.step_metrics(dict(sorted(rows.items())))  # pyarrow missing: fails here, nothing written
        path = self._artifact_dir(run, self.METRICS_PATH) / metrics_name
        atomic_write(path, data)
        for seq, values in sorted(rows.items()):
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    run.recorder.add_step_metric(f"{metrics_name}.{key}", value, seq)
        return self._log(str(path), "output", "step_metrics", None, {})

    def create_dataslice(self, name: str) -> _Slice:
        """A named subset of files; add them with ``add_data`` and write it with ``commit``."""
        return DataSlice(name, self)

    def read_dataslice(self, name: str) -> Any:
        """The rows of dataslice ``name`` as cmflib returns them: its parquet file read by pandas
        (a DataFrame indexed by ``Path``)."""
        return cmf_tables.read(self._dataslice_path(name), "read_dataslice")

    def update_dataslice(self, name: str, record: str, custom_properties: dict[str, Any]) -> None:
        """Set ``custom_properties`` on the row of file ``record`` in dataslice ``name``.

        The file is rewritten, and (unlike cmflib, whose hash then goes stale) the
        new version is recorded as an output of the current execution.
        """
        path = self._dataslice_path(name)
        props = cmf_tables.rows_of(cmf_tables.read(path, "update_dataslice"))
        if record not in props:
            raise UsageError(f"dataslice '{name}' has no record '{record}'")
        props[record].update(custom_properties)
        atomic_write(path, cmf_tables.dataslice(props, "update_dataslice"))
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

    # -- the rest of cmflib's Cmf: validation output, artifact updates, known versions --

    def log_validation_output(self, version: str, custom_properties: dict[str, Any] | None = None) -> Artifact:
        """A CMF ``Validation_output`` artifact (an internal output named by a fresh uuid) with
        ``version`` as its property and your custom properties as its props."""
        run = self._run()
        uri = str(uuidlib.uuid1())
        source = {
            "cmf": {
                "name": uri,
                "uri": uri,
                "type": VALIDATION_OUTPUT,
                "event": _INTERNAL_OUTPUT,
                "order": run.next_order(),
                "properties": {"version": str(version)},
            }
        }
        art = _Artifact(uri, "validation_output", dict(custom_properties or {}), cmf_format.hash_of_uri(uri, uri))
        art.kind, art.source = "external", source
        run.recorder.outputs.append(art)
        run.changed = True
        return self._returned(art, uri, uri, VALIDATION_OUTPUT, {"version": str(version)})

    def get_artifact(self, artifact_id: int) -> Artifact:
        """An artifact this object logged, by the id it returned (others: ``cmfgit.query``)."""
        found = self._artifacts.get(artifact_id)
        if found is None:
            raise UsageError(
                f"no artifact {artifact_id} was logged by this Cmf object (use cmfgit.query.CmfQuery for the others)"
            )
        return found[0]

    def update_existing_artifact(self, artifact: Artifact, custom_properties: dict[str, Any]) -> None:
        """Merge ``custom_properties`` into an artifact's (``labels``, ``labels_uri`` and
        ``dataset_uri`` gather comma-separated values, as in cmflib). An artifact of the
        execution being recorded changes in its record; one already written gets the values
        as tags (cmfgit tag), since records never change."""
        found = self._artifacts.get(artifact.id)
        current = {**artifact.custom_properties, **(found[1].props if found is not None else {})}
        for key, value in custom_properties.items():
            old = current.get(key)
            if key in _LISTED and isinstance(old, str) and old:
                current[key] = ",".join(sorted(set(f"{old},{value}".split(","))))
            else:
                current[key] = value
        artifact.custom_properties = current
        self.update_model_output(artifact)

    def update_model_output(self, artifact: Artifact) -> None:
        """Store the artifact object's custom properties and ``url`` property again (cmflib's put_artifact)."""
        changes = {k: v for k, v in artifact.custom_properties.items()}
        found = self._artifacts.get(artifact.id)
        run = self._open
        if (
            found is not None
            and run is not None
            and any(found[1] is a for a in run.recorder.inputs + run.recorder.outputs)
        ):
            rec = found[1]
            rec.props.update(changes)
            if "url" in artifact.properties:
                rec.source.setdefault("cmf", {}).setdefault("properties", {})["url"] = artifact.properties["url"]
            run.changed = True
            return
        if "url" in artifact.properties:
            changes["url"] = artifact.properties["url"]
        self._tag(artifact.hash, {k: v if isinstance(v, str) else str(v) for k, v in changes.items()})

    def update_dataset_url(self, artifact: Artifact, updated_url: str) -> None:
        """Add ``updated_url`` to the artifact's ``url`` property (comma-separated, once)."""
        old = str(artifact.properties.get("url") or "")
        if not old.strip():
            artifact.properties["url"] = updated_url
        elif updated_url not in old:
            artifact.properties["url"] = f"{old},{updated_url}"
        self.update_model_output(artifact)

    def update_model_url(self, dup_artifact: list[Artifact], updated_url: str) -> list[Artifact]:
        """:meth:`update_dataset_url` of each artifact; returns them."""
        for art in dup_artifact:
            self.update_dataset_url(art, updated_url)
        return dup_artifact

    def link_artifacts(self, artifact_source: Artifact, artifact_target: Artifact) -> None:
        """cmflib draws a 'derived' edge in neo4j; cmfgit tags the target ``derived_from`` = the source's hash."""
        self._tag(artifact_target.hash, {"derived_from": artifact_source.hash})

    def log_dataset_with_version(
        self,
        url: str,
        version: str,
        event: str,
        props: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
    ) -> Artifact:
        """A dataset known by its CMF version (DVC md5) whose bytes need not be here (cmf-server's merge)."""
        return self._log_known(url, version, event, "dataset", props, custom_properties)

    def log_model_with_version(
        self,
        path: str,
        event: str,
        props: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
    ) -> Artifact:
        """A model known by its CMF uri (``props['uri']``), bytes not needed."""
        uri = str((props or {}).get("uri") or "").strip()
        if not uri:
            raise UsageError("log_model_with_version needs the model's uri in props['uri']")
        return self._log_known(path, uri, event, "model", props, custom_properties)

    def log_label_with_version(
        self,
        url: str,
        version: str,
        props: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
    ) -> Artifact:
        """A label file known by its CMF version, as an input."""
        return self._log_known(url, version, "input", "label", props, custom_properties)

    def log_python_env_from_client(self, url: str, uri: str, props: dict[str, Any] | None = None) -> Artifact:
        """An environment file known by its CMF uri, as an input."""
        return self._log_known(url, uri, "input", "environment", props, None)

    def log_execution_metrics_from_client(
        self, metrics_name: str, custom_properties: dict[str, Any] | None = None
    ) -> Artifact:
        """Execution metrics named ``name:uri:execution id`` elsewhere, with their values."""
        parts = metrics_name.split(":")
        if len(parts) < 3:
            raise UsageError(f"'{metrics_name}' is not a CMF metrics name (name:uri:execution id)")
        run = self._run()
        values = dict(custom_properties or {})
        run.recorder.add_metrics(values, where=parts[0])
        return self._log_known(parts[0], parts[1], "output", "metrics", {"metrics_name": ""}, values)

    def log_step_metrics_from_client(
        self,
        metrics_name: str,
        uri: str,
        props: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
    ) -> Artifact:
        """Step metrics (CMF's parquet file) known by its uri, as an output."""
        return self._log_known(metrics_name, uri, "output", "step_metrics", props, custom_properties)

    def merge_created_context(self, pipeline_stage: str, custom_properties: dict[str, Any] | None = None) -> Context:
        """:meth:`create_context` for a stage named ``<pipeline>/<stage>`` or ``<stage>``."""
        prefix = f"{self.pipeline_name}/"
        stage = pipeline_stage[len(prefix) :] if pipeline_stage.startswith(prefix) else pipeline_stage
        return self.create_context(stage, custom_properties)

    def merge_created_execution(
        self,
        execution_type: str,
        execution_cmd: str,
        properties: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
        orig_execution_name: str = "",
        create_new_execution: bool = True,
    ) -> Execution:
        """:meth:`create_execution` of an execution made elsewhere; its ``Execution_uuid`` is kept."""
        reused = not create_new_execution and bool(orig_execution_name)
        name = orig_execution_name if reused else execution_type
        params = {k: v for k, v in (custom_properties or {}).items() if k != "Python_Env"}
        execution = self.create_execution(name, params, cmd=execution_cmd, create_new_execution=not reused)
        original = (properties or {}).get("Execution_uuid")
        if isinstance(original, str) and original and self._open is not None:
            self._open.recorder.extra["uuid"] = original.split(",")[0]
            self._open.uuids = original.split(",")
            execution.properties["Execution_uuid"] = original
        return execution

    def _log_known(
        self,
        path: str,
        uri: str,
        event: str,
        kind: str,
        props: dict[str, Any] | None,
        custom_properties: dict[str, Any] | None,
    ) -> Artifact:
        """An artifact known by its CMF uri only (kind ``external``): what cmf-server's merge logs."""
        run = self._run()
        uri = str(uri).strip()
        if not uri:
            raise UsageError(f"{path}: an artifact logged with its version needs that version (uri)")
        ctype = cmf_format.cmf_type(kind)
        with_exec = ctype in ("Model", "Metrics", "Step_Metrics")
        name = f"{path}:{uri}:{run.execution.id}" if with_exec else f"{path}:{uri}"
        properties = {k: v for k, v in (props or {}).items() if k not in ("uri", "name")}
        if kind == "metrics":
            properties["metrics_name"] = name
        source = {"cmf": {"name": name, "uri": uri, "order": run.next_order()}}
        if properties:
            source["cmf"]["properties"] = properties
        art = _Artifact(path, kind, dict(custom_properties or {}), cmf_format.hash_of_uri(uri, name))
        art.kind, art.source = "external", source
        is_input = str(event).lower() == "input"
        (run.recorder.inputs if is_input else run.recorder.outputs).append(art)
        run.changed = True
        return self._returned(art, name, uri, ctype, properties)

    def _tag(self, target: str, changes: dict[str, str]) -> None:
        """Annotate an artifact already written (records never change): a tag record, pending like any."""
        from cmfgit import tags
        from cmfgit.config import site_name
        from cmfgit.store import Store

        if changes:
            Store(self.repo.objects_dir).put(tags.annotation(target, changes, site=site_name(self.repo)))

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
        if self._open is not None:
            mine = self._artifact_dir(self._open, self.DATASLICE_PATH) / name
            if mine.is_file():
                return mine
        found = sorted(
            (p for p in (self.base / self.ARTIFACTS_PATH).glob(f"*/{self.DATASLICE_PATH}/{name}") if p.is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            raise UsageError(f"no dataslice named '{name}' (create_dataslice(...).commit() writes one)")
        return found[-1]

    def _artifact_dir(self, run: _Open, kind: str) -> Path:
        """``cmf_artifacts/<execution uuid>/<kind>``: the first uuid of a reused execution, as cmflib."""
        uuid = str(run.execution.properties["Execution_uuid"]).split(",")[0]
        return self.base / self.ARTIFACTS_PATH / uuid / kind

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
        if art.kind == "dir" and "files" not in (custom_properties or {}):
            art.props.pop("files", None)  # CMF's custom properties are the script's own (the size stays)
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
        run.changed = True
        ctype = cmf_format.cmf_type(kind)
        name = f"{art.path}:{uri}:{run.execution.id}" if kind in ("model", "step_metrics") else f"{art.path}:{uri}"
        if kind == "step_metrics":  # cmflib's Step_Metrics name ends in a fresh uuid1
            name += f":{uuidlib.uuid1()}"
        return self._returned(art, name, uri, ctype, properties)

    def _returned(self, art: _Artifact, name: str, uri: str, ctype: str, properties: dict[str, Any]) -> Artifact:
        obj = Artifact(self._next("artifact"), name, uri, ctype, str(art.hash), dict(properties), dict(art.props))
        self._artifacts[obj.id] = (obj, art)
        return obj

    def _close(self, exit_code: int | None, error: str | None = None) -> str | None:
        """Write the current execution (unless it is a continuation with nothing new) and end it."""
        run, self._open = self._open, None
        _recording.discard(self)
        if run is None:
            return None
        if not run.changed:
            return run.execution.record_id
        rid = self._write(run, exit_code, error)
        run.execution.record_id = run.execution.record_id or rid
        return rid

    def _write(self, run: _Open, exit_code: int | None, error: str | None) -> str:
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
        if run.continues:
            execution["continues"] = run.continues
        properties: dict[str, Any] = {}
        if run.cmd is not None:
            argv = _split_command(run.cmd)
            shown = run.cmd if red.argv(argv) == argv else shlex.join(red.argv(argv))
            properties["Execution"] = red.text(shown)
        if len(run.uuids) > 1:
            properties["Execution_uuid"] = ",".join(run.uuids)
        if properties:
            execution["properties"] = properties
        if execution:
            cmf["execution"] = execution
        run.recorder.extra["source"] = {"cmf": cmf}
        rid = run.recorder.finish(exit_code, error)
        run.recorder.warnings, warnings = [], run.recorder.warnings
        for warning in warnings:
            _warn(warning)
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
    """A named set of files with per-file properties, written as cmflib's parquet file (cmflib's DataSlice)."""

    def __init__(self, name: str, writer: Cmf) -> None:
        self.name = name
        self.writer = writer
        self.props: dict[str, dict[str, Any]] = {}

    def add_data(self, path: str, custom_properties: dict[str, Any] | None = None) -> None:
        """Add the file ``path`` (it must exist) with its properties; its md5 is its ``hash``, as in cmflib."""
        full = self.writer._file(path)
        rel = self.writer.repo.relpath(full, self.writer.base)
        self.props[rel] = {"hash": _md5(full), **(custom_properties or {})}

    def commit(self, custom_properties: dict[str, Any] | None = None) -> Artifact:
        """Write the slice as cmflib does (parquet, indexed by ``Path``, at
        ``cmf_artifacts/<execution uuid>/dataslice/<name>``, no extension) and record it as an output."""
        run = self.writer._run()
        data = cmf_tables.dataslice(self.props)  # pyarrow missing: fails here, nothing written
        path = self.writer._artifact_dir(run, self.writer.DATASLICE_PATH) / self.name
        atomic_write(path, data)
        return self.writer._log(str(path), "output", "dataslice", custom_properties, {})


_Slice = DataSlice
Cmf.DataSlice = DataSlice


# -- executions left open when the process ends are written, marked failed after an uncaught exception --

_recording: set[Cmf] = set()
_crash: dict[str, str] = {}
_previous_hook = sys.excepthook


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _crash["error"] = f"{exc_type.__name__}: {exc}"
    _crash["code"] = "130" if issubclass(exc_type, KeyboardInterrupt) else "1"
    if issubclass(exc_type, CmfgitError):
        # A user error (a missing file, pyarrow not installed...): one line, naming the script's line
        # that made the call, and Python's exit status 1; no traceback.
        print(f"cmfgit: error: {exc}{_caller(tb)}", file=sys.stderr)
        return
    _previous_hook(exc_type, exc, tb)


def _caller(tb: TracebackType | None) -> str:
    """`` (at script.py:12)``: the last frame of the traceback outside cmfgit, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        full = os.path.abspath(filename)
        if not full.startswith(here + os.sep):
            shown = os.path.relpath(full) if full.startswith(os.getcwd() + os.sep) else filename
            found = f" (at {shown}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


def _at_exit() -> None:
    for writer in list(_recording):
        try:
            writer._close(int(_crash.get("code", "0")), _crash.get("error"))
        except Exception as exc:  # at exit there is no caller left to raise to
            _warn(f"could not write the open execution: {exc}")


sys.excepthook = _excepthook
atexit.register(_at_exit)
