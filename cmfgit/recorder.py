"""Builds one execution record. Shared by ``log-run`` and the Python API.

The recorder captures the code version and hashes inputs when the run
starts, hashes outputs when it ends, and writes one immutable record.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from cmfgit import envinfo, gitstate, schema
from cmfgit.canonical import MAX_INPUT_DEPTH, too_deep
from cmfgit.config import Config, load_config, site_name
from cmfgit.environ import getenv
from cmfgit.errors import PathError, UsageError
from cmfgit.hashing import Hasher
from cmfgit.init import ensure_configured
from cmfgit.redact import Redactor
from cmfgit.repo import Repo
from cmfgit.store import Store

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

MODEL_SUFFIXES = (
    ".pkl",
    ".pickle",
    ".joblib",
    ".pt",
    ".pth",
    ".onnx",
    ".h5",
    ".keras",
    ".safetensors",
    ".ckpt",
    ".bin",
)


def default_type(path: str) -> str:
    """A sensible artifact type when none is given: models by extension."""
    return "model" if path.lower().endswith(MODEL_SUFFIXES) else "dataset"


_STR_ONLY = {str}
_SCALARS = {str, int, float, bool, type(None)}


def flatten(values: dict[str, Any], prefix: str = "", what: str = "params", depth: int = 1) -> dict[str, Any]:
    """Nested mappings become dotted keys: {'a': {'b': 1}} -> {'a.b': 1}; values
    become what a record can hold (see :func:`plain`)."""
    if not isinstance(values, dict):
        raise UsageError(f"{what} must be a mapping, not {type(values).__name__}")
    if not prefix and set(map(type, values)) <= _STR_ONLY and set(map(type, values.values())) <= _SCALARS:
        return dict(values)  # already flat and plain: the common case, without a loop in Python
    if depth > MAX_INPUT_DEPTH:
        raise UsageError(f"{what[:-1]} '{prefix.split('.', 1)[0]}': {too_deep()}")
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + ".", what, depth + 1))
        else:
            flat[name] = plain(value, f"{what[:-1]} '{name}'", depth)
    return flat


def plain(value: Any, what: str, depth: int = 1) -> Any:
    """``value`` as a record holds it: numbers, text, booleans, None, lists and
    mappings as they are; paths, dates, decimals, sets and numpy values converted
    (a path is its text, a date its ISO form); anything else is a usage error,
    raised when the value is given rather than when the run ends. So is a value
    nested more than ``MAX_INPUT_DEPTH`` levels deep, or one that contains itself."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, (list, tuple, dict, set, frozenset)) and depth > MAX_INPUT_DEPTH:
        raise UsageError(f"{what}: {too_deep()}")
    if isinstance(value, (list, tuple)):
        return [plain(v, what, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, what, depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v, what, depth + 1) for v in value), key=repr)
    if isinstance(value, str):  # subclasses: a str enum records its text ("red", not "Color.RED")
        return str.__str__(value)
    if isinstance(value, int):  # IntEnum, IntFlag (a bool is in _SCALARS)
        return int(value)
    if isinstance(value, float):  # numpy.float64
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    module = kind.__module__
    if module == "datetime" and hasattr(value, "isoformat"):
        return value.isoformat()
    if module == "decimal":
        return float(value)
    if module.startswith("numpy") and hasattr(value, "tolist"):  # numpy scalars and arrays
        return plain(value.tolist(), what, depth)
    raise UsageError(
        f"{what}: a value of type {kind.__name__} cannot be recorded "
        "(use numbers, text, booleans, None, lists or mappings)"
    )


def numeric_metrics(values: dict[str, Any]) -> tuple[dict[str, int | float], list[str]]:
    """Keep the numbers of a (possibly nested) mapping; name what was dropped."""
    kept: dict[str, int | float] = {}
    dropped: list[str] = []
    for key, value in flatten(values, what="metrics").items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            kept[key] = value
        else:
            dropped.append(key)
    return kept, dropped


def _utf8(text: str) -> str:
    """``text`` made recordable: bytes that are not UTF-8 (surrogate escapes
    from a non-UTF-8 argv) become visible ``\\udcff`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _user() -> str:
    """getpass.getuser(), without importing getpass (start-up time)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = getenv(name)
        if user:
            return user
    return _account_name()


@lru_cache(maxsize=1)
def _account_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid())[0]
    except Exception:  # no passwd entry and no $USER: containers do this
        return "unknown"


def _name(what: str, value: str) -> str:
    """A pipeline, stage or type name as given; one that would garble tables and
    listings (a newline, a tab, another control character) is a usage error."""
    if not value.isprintable():
        raise UsageError(f"the {what} name {value!r} contains a control character")
    return value


def _uuid4_hex() -> str:
    """uuid.uuid4().hex, without importing uuid (it imports platform: ~5 ms)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


_rel_cwds: dict[tuple[str, str], str] = {}
_stores: dict[str, Store] = {}


def _relative_cwd(cwd: str, root: str) -> str:
    """The working directory relative to the repository root ('/'-separated), memoised."""
    rel = _rel_cwds.get((cwd, root))
    if rel is None:
        try:
            rel = os.path.relpath(cwd, root).replace(os.sep, "/")
        except ValueError:
            rel = "."
        if len(_rel_cwds) >= 64:
            _rel_cwds.clear()
        _rel_cwds[(cwd, root)] = rel
    return rel


def _store(repo: Repo, root: str) -> Store:
    """The store of the repository at ``root`` (one object per repository and process)."""
    store = _stores.get(root)
    if store is None:
        if len(_stores) >= 16:
            _stores.clear()
        store = _stores[root] = Store(repo.objects_dir)
    return store


class Artifact:
    """One input or output. A plain class: dataclasses costs hot commands ~15 ms of imports."""

    def __init__(
        self,
        path: str,  # repo-relative, '/'-separated
        type: str,
        props: dict[str, Any] | None = None,
        hash: str | None = None,
        size: int | None = None,
        kind: str = "missing",
        aliases: list[str] | None = None,  # other hashes of the same bytes (e.g. md5:)
        source: dict[str, Any] | None = None,  # e.g. CMF ids/type (cmfgit.compat)
    ) -> None:
        self.path = path
        self.type = type
        self.props: dict[str, Any] = {} if props is None else props
        self.hash = hash
        self.size = size
        self.kind = kind
        self.aliases: list[str] = [] if aliases is None else aliases
        self.source: dict[str, Any] = {} if source is None else source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Artifact) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Artifact({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "path": self.path,
            "hash": self.hash,
            "size": self.size,
            "type": self.type,
            "kind": self.kind,
            "props": self.props,
        }
        if self.aliases:
            record["aliases"] = list(self.aliases)
        if self.source:
            record["source"] = self.source
        return record


class Recorder:
    """Collects one execution and writes it with :meth:`finish`."""

    def __init__(
        self,
        repo: Repo,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        execution_type: str | None = None,
        params: dict[str, Any] | None = None,
        command: list[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        config: Config | None = None,
        hasher: Hasher | None = None,
        redactor: Redactor | None = None,
        reuse_git_state: bool = False,
        executable: str | None = None,
        progress: bool = True,
    ) -> None:
        self.repo = repo
        self.config = config or load_config(repo)
        self.cwd = os.fspath(cwd) if cwd is not None else os.getcwd()  # str paths: this runs per API run
        self._root = os.fspath(repo.root)
        pipeline = pipeline or self.config.pipeline or repo.name
        stage = stage or self.config.stage
        if not stage:
            raise UsageError("no stage given: pass --stage/-s (or stage=...) or set 'stage' in .cmf/config.yaml")
        self.pipeline = _name("pipeline", pipeline)
        self.stage = _name("stage", stage)
        self.execution_type = _name("execution type", execution_type or stage)
        self.redactor = redactor or Redactor(self.config.redact_keys, self.config.redact_values)
        self.params = flatten(params or {})
        self.command = [_utf8(a) for a in (command if command is not None else sys.argv)]
        self.inputs: list[Artifact] = []
        self.outputs: list[Artifact] = []
        self.metrics: dict[str, int | float] = {}
        self.step_metrics: dict[str, list[list[int | float | None]]] = {}
        self.extra: dict[str, Any] = {}
        self.executable = executable
        # (version, sys.path) of the command's own Python, when log-run learnt it
        self.interpreter: tuple[str, tuple[str, ...]] | None = None
        self._own_hasher = hasher is None
        self.hasher = hasher or Hasher(repo.state_dir / "hashcache.sqlite", progress=progress)
        self._reuse = reuse_git_state
        self.started_at: str | None = None
        self._git: gitstate.Snapshot | None = None
        self.warnings: list[str] = []

    # -- the run's life ----------------------------------------------------

    def start(self) -> None:
        """Capture the code version and the start time."""
        self._git = gitstate.capture(self.repo, reuse=self._reuse, config=self.config, redactor=self.redactor)
        # A fresh clone has no merge driver: git would merge records as text.
        driver = self._git.config.get("merge.cmfgit.driver")
        configured = ensure_configured(self.repo, driver, known=True)
        if configured:
            self.warnings.append(f"this clone was not set up for cmfgit; configured {', '.join(configured)}")
        self.started_at = schema.utc_now()

    def artifact(self, path: str | os.PathLike[str], type: str | None, props: dict[str, Any] | None) -> Artifact:
        rel = self.repo.relpath(path, self.cwd)
        if not rel.isascii() and _utf8(rel) != rel:
            raise PathError(os.fspath(path), "has a file name that is not valid UTF-8")
        if type is not None and not schema.valid_type_name(type):
            raise UsageError(f"artifact type '{type}' must be a lower-case name such as dataset or model")
        kept = {str(k): plain(v, f"property '{k}'") for k, v in props.items()} if props else {}
        return Artifact(rel, type or default_type(rel), kept)

    def hash_into(self, art: Artifact, *, missing_ok: bool, cache: Any = None) -> Artifact:
        full = f"{self._root}/{art.path}"
        try:
            digest = (
                self.hasher.hash_path(full, art.path) if cache is None else self._cache_output(cache, full, art.path)
            )
        except PathError as exc:
            # Outputs are hashed after the command ran: refusing now would lose
            # the run, so an unreadable output is recorded as missing, loudly.
            if not missing_ok:
                raise
            if os.path.lexists(full):
                self.warnings.append(f"output {art.path} could not be hashed ({exc.reason}); recorded as missing")
            else:
                self.warnings.append(f"output {art.path} was not created; recorded as missing")
            art.hash, art.size, art.kind = None, None, "missing"
            return art
        art.hash, art.size, art.kind = digest.hash, digest.size, digest.kind
        if digest.kind == "dir":
            art.props.setdefault("files", digest.files)
        return art

    def _output_cache(self) -> Any:
        """The data cache outputs enter as they are recorded (``data.cache_outputs``), or None."""
        mode = self.config.cache_outputs
        if mode == "none":
            return None
        from cmfgit.data.cache import Cache, cache_dir  # only runs with outputs pay for it

        git_config = self._git.config if self._git is not None else None
        return Cache(cache_dir(self.repo, git_config), self.hasher, reflink_only=mode == "reflink")

    def _cache_output(self, cache: Any, full: str, rel: str) -> Any:
        """Hash an output and put its bytes into the data cache. A failure to cache
        (a full disk, a file still being written) costs a warning, never the run."""
        try:
            return cache.add_path(full, rel).digest
        except (PathError, OSError) as exc:
            digest = self.hasher.hash_path(full, rel)  # a missing output raises here, as without a cache
            reason = exc.reason if isinstance(exc, PathError) else (exc.strerror or str(exc))
            self.warnings.append(f"output {rel} was not put in the data cache: {reason}")
            return digest

    def add_input(
        self, path: str | os.PathLike[str], type: str | None = None, props: dict[str, Any] | None = None
    ) -> Artifact:
        """Hash an input now: inputs are identified as they were before the run."""
        art = self.hash_into(self.artifact(path, type, props), missing_ok=False)
        self.inputs.append(art)
        return art

    def declare_output(
        self, path: str | os.PathLike[str], type: str | None = None, props: dict[str, Any] | None = None
    ) -> Artifact:
        """Name an output; it is hashed by :meth:`finish`."""
        art = self.artifact(path, type, props)
        self.outputs.append(art)
        return art

    def add_metrics(self, values: dict[str, Any], where: str = "metrics") -> None:
        kept, dropped = numeric_metrics(values)
        if dropped:
            self.warnings.append(f"{where}: ignored non-numeric metric(s): {', '.join(dropped)}")
        self.metrics.update(kept)

    def add_step_metric(self, name: str, value: float, step: int | None) -> float:
        """Add one step of a metric; returns the value as recorded."""
        value = plain(value, f"metric '{name}'")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"metric '{name}' must be a number, not {type(value).__name__}")
        step = plain(step, f"metric '{name}' step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise UsageError(f"metric '{name}': step must be an integer or None, not {type(step).__name__}")
        self.step_metrics.setdefault(name, []).append([step, value])
        return value

    def finish(self, exit_code: int | None, error: str | None = None) -> str:
        """Hash the outputs, write the record, return its id."""
        if self._git is None or self.started_at is None:
            self.start()
        assert self._git is not None and self.started_at is not None
        ended_at = schema.utc_now()
        cache = self._output_cache() if self.outputs else None
        for art in self.outputs:
            if art.kind == "missing":
                self.hash_into(art, missing_ok=True, cache=cache)
        record = self.build(exit_code, error, ended_at)
        rid = _store(self.repo, self._root).put(record)
        if self._own_hasher:
            self.hasher.close()
        return rid

    def build(self, exit_code: int | None, error: str | None, ended_at: str) -> dict[str, Any]:
        assert self._git is not None and self.started_at is not None
        red = self.redactor
        state = self._git.state
        git = state.as_record()
        if git["remote"]:
            git["remote"] = red.text(git["remote"])
        rel_cwd = _relative_cwd(self.cwd, self._root)
        record: dict[str, Any] = {
            "schema": schema.EXECUTION,
            "uuid": _uuid4_hex(),
            "pipeline": self.pipeline,
            "stage": self.stage,
            "type": self.execution_type,
            "command": red.argv(self.command),
            "cwd": rel_cwd,
            "params": red.mapping(self.params),
            "started_at": self.started_at,
            "ended_at": ended_at,
            "exit_code": exit_code,
            "site": site_name(self.repo, self._git.config),
            "host": os.uname().nodename,  # socket.gethostname(), without importing socket
            "user": _user(),
            "git": git,
            "env": envinfo.environment(self.config.env_record, red, self.executable, self.interpreter),
            "inputs": [a.as_record() for a in self.inputs],
            "outputs": [a.as_record() for a in self.outputs],
            "metrics": {k: v for k, v in self.metrics.items()},
        }
        if error is not None:
            record["error"] = red.text(error)
        if self.step_metrics:
            record["step_metrics"] = self.step_metrics
        record.update(self.extra)
        return record
