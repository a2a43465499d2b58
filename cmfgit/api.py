"""The Python API: ``with cmfgit.run(...) as run:``.

::

    import cmfgit

    with cmfgit.run(pipeline="wine", stage="train", params={"lr": 0.01}) as run:
        run.log_input("data/train.csv")
        ...  # train
        run.log_output("model.pkl", type="model", framework="sklearn")
        run.log_metrics({"rmse": 0.71})
        for step, loss in enumerate(losses):
            run.log_metric("loss", loss, step=step)
    print(run.id)

An exception inside the block still writes the record, with exit code 1 and
the error, and then propagates. A process that logs many runs (a sweep)
reads the git state, the config and the hash cache once, not once per run.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType
from typing import Any

from cmfgit.config import Config, load_config
from cmfgit.environ import getenv
from cmfgit.hashing import Hasher
from cmfgit.recorder import Recorder
from cmfgit.redact import Redactor
from cmfgit.repo import Repo, open_repo


class _Session:
    """Per-process, per-repository things that are costly to set up."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.config_path = os.fspath(repo.config_path)
        self.config_stamp = self._stamp()
        self.config: Config = load_config(repo)
        self.redactor = Redactor(self.config.redact_keys, self.config.redact_values)
        self.hasher = Hasher(repo.state_dir / "hashcache.sqlite", progress=False)

    def _stamp(self) -> int:
        try:
            return os.stat(self.config_path).st_mtime_ns
        except OSError:
            return 0

    def refresh(self) -> bool:
        """Reload the config if it changed; False if it is gone (not initialised)."""
        stamp = self._stamp()
        if stamp == 0:
            return False
        if stamp != self.config_stamp:
            self.config_stamp = stamp
            self.config = load_config(self.repo)
            self.redactor = Redactor(self.config.redact_keys, self.config.redact_values)
        return True


_sessions: dict[str, _Session] = {}
# Where a run() call looked -> the repository root it found, so that a sweep
# does not walk up the directory tree for every run.
_roots: dict[tuple[str, str | None, str | None, str | None, str | None], str] = {}


def _session(repo_path: str | os.PathLike[str] | None, cwd: str) -> _Session:
    where = (
        cwd,
        None if repo_path is None else os.fspath(repo_path),
        getenv("GIT_DIR"),
        getenv("GIT_WORK_TREE"),
        getenv("GIT_COMMON_DIR"),
    )
    root = _roots.get(where)
    session = _sessions.get(root) if root is not None else None
    if session is not None and session.refresh():
        return session
    repo = open_repo(repo_path)
    key = str(repo.root)
    session = _sessions.get(key)
    if session is None:
        session = _sessions[key] = _Session(repo)
    else:
        session.refresh()
    _roots[where] = key
    return session


class Run:
    """One execution being recorded. Use it as a context manager."""

    def __init__(self, recorder: Recorder) -> None:
        self._rec = recorder
        self.id: str | None = None

    @property
    def pipeline(self) -> str:
        return self._rec.pipeline

    @property
    def stage(self) -> str:
        return self._rec.stage

    def log_param(self, key: str, value: Any) -> None:
        from cmfgit.recorder import flatten

        self._rec.params.update(flatten({key: value}))

    def log_params(self, params: dict[str, Any]) -> None:
        from cmfgit.recorder import flatten

        self._rec.params.update(flatten(params))

    def log_input(self, path: str | os.PathLike[str], type: str | None = None, **props: Any) -> str:
        """Hash ``path`` now and record it as an input; returns its hash."""
        art = self._rec.add_input(path, type, props)
        return art.hash or ""

    def log_output(self, path: str | os.PathLike[str], type: str | None = None, **props: Any) -> None:
        """Record ``path`` as an output; it is hashed when the run ends."""
        self._rec.declare_output(path, type, props)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        self._rec.add_metrics(metrics)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """A per-step metric (loss per epoch). The last value is also kept as
        the run's summary metric of that name."""
        self._rec.metrics[name] = self._rec.add_step_metric(name, value, step)

    def finish(self, exit_code: int = 0, error: str | None = None) -> str:
        if self.id is None:
            self.id = self._rec.finish(exit_code, error)
            for warning in self._rec.warnings:
                print(f"cmfgit: warning: {warning}", file=sys.stderr)
        return self.id

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish(0)
            return
        detail = "".join(traceback.format_exception_only(exc_type, exc)).strip()
        if isinstance(exc, SystemExit):  # sys.exit(n) inside the block: exit status n, as a shell sees it
            status = exc.code
            code = status if isinstance(status, int) else (0 if status is None else 1)
            self.finish(code, None if code == 0 else detail)
            return
        code = 130 if issubclass(exc_type, KeyboardInterrupt) else 1
        self.finish(code, detail)


def run(
    pipeline: str | None = None,
    stage: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    execution_type: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    command: list[str] | None = None,
) -> Run:
    """Start recording an execution of ``pipeline``/``stage``.

    ``repo`` is any path inside the repository (default: the working
    directory). ``command`` defaults to this process's ``sys.argv``.
    """
    cwd = os.getcwd()
    session = _session(repo, cwd)
    rec = Recorder(
        session.repo,
        pipeline=pipeline,
        stage=stage or session.config.stage or _script_stage(),
        execution_type=execution_type,
        params=params,
        command=command,
        cwd=cwd,
        config=session.config,
        hasher=session.hasher,
        redactor=session.redactor,
        reuse_git_state=True,
        executable=sys.executable,
    )
    rec.start()
    return Run(rec)


def _script_stage() -> str:
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    stem = os.path.splitext(script)[0]
    return stem if stem and stem not in ("-c", "-m", "") else "run"


def tag(
    target: str,
    tags: dict[str, Any] | None = None,
    *,
    remove: list[str] | tuple[str, ...] = (),
    commit: bool = False,
    repo: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Set ``tags`` (values stored as text) and remove the names in ``remove`` on an
    execution (id or prefix, e.g. ``run.id``) or an artifact (hash or path).

    Returns the target's tags afterwards. ``cmfgit.query`` reads them back
    (``CmfQuery.tags_of``), and ``log --where 'tags.KEY == "..."'`` filters by them.
    """
    from cmfgit import tags as tagging
    from cmfgit.repo import open_repo

    changes: dict[str, str | None] = {tagging.check_name(k): str(v) for k, v in (tags or {}).items()}
    for name in remove:
        changes[tagging.check_name(name)] = None
    _key, _rid, now = tagging.tag(open_repo(repo), target, changes, commit=commit)
    return now


def retract(
    ids: list[str] | tuple[str, ...] | str,
    *,
    reason: str | None = None,
    commit: bool = False,
    repo: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Withdraw records (ids or unique prefixes, e.g. ``run.id``): readers no longer
    show them and no merge, pull or export brings them back (``cmfgit retract``).

    Returns the full ids withdrawn, those already retracted included.
    """
    from cmfgit import retractions as retracting
    from cmfgit.repo import open_repo

    _rid, new, already = retracting.retract(
        open_repo(repo), [ids] if isinstance(ids, str) else list(ids), reason=reason, commit=commit
    )
    return sorted(new + already)
