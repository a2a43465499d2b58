"""Settings: ``.cmf/config.yaml`` (committed, shared by all sites) and the
per-clone site name (``git config cmfgit.site``, or ``$CMFGIT_SITE``)."""

from __future__ import annotations

import os

from cmfgit import canonical
from cmfgit.environ import getenv
from cmfgit.errors import RecordError
from cmfgit.repo import Repo

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

CONFIG_SCHEMA = "cmfgit/config/1"
CACHE_MODES = ("copy", "reflink", "none")

# Environment variables worth recording by default: they change results.
DEFAULT_ENV_RECORD = [
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "TF_DETERMINISTIC_OPS",
    "SLURM_JOB_ID",
    "CMFGIT_*",
]

# The dirty-tree snapshot (git.tree, see gitstate.py and docs/format.md section 3.2).
SNAPSHOT_UNTRACKED = False  # untracked files are not captured unless asked: they may be anything
SNAPSHOT_PUSH = True  # cmfgit push sends the keep refs, so other sites resolve every run's code
SNAPSHOT_MAX_FILE_SIZE = 256 * 1024
SNAPSHOT_MAX_FILES = 1000
SNAPSHOT_MAX_TOTAL_SIZE = 8 * 1024 * 1024
# ``git config`` keys of this clone that override the snapshot settings (git
# lower-cases the last part: ``cmfgit.snapshot.maxFiles`` reads as maxfiles).
_GIT_SNAPSHOT_KEYS = {
    "untracked": "cmfgit.snapshot.untracked",
    "push": "cmfgit.snapshot.push",
    "max_file_size": "cmfgit.snapshot.maxfilesize",
    "max_files": "cmfgit.snapshot.maxfiles",
    "max_total_size": "cmfgit.snapshot.maxtotalsize",
}
_GIT_TRUE = ("true", "yes", "on", "1", "")  # git's spellings ('' is a key with no value)
_GIT_FALSE = ("false", "no", "off", "0")
_GIT_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class Config:
    """The settings. A plain class: importing dataclasses costs hot commands ~15 ms."""

    def __init__(
        self,
        pipeline: str | None = None,
        stage: str | None = None,
        gc_threshold: int = 1000,
        pack_period: str = "month",
        redact_keys: list[str] | None = None,
        redact_values: list[str] | None = None,
        env_record: list[str] | None = None,
        snapshot_untracked: bool = SNAPSHOT_UNTRACKED,
        snapshot_push: bool = SNAPSHOT_PUSH,
        snapshot_max_file_size: int = SNAPSHOT_MAX_FILE_SIZE,
        snapshot_max_files: int = SNAPSHOT_MAX_FILES,
        snapshot_max_total_size: int = SNAPSHOT_MAX_TOTAL_SIZE,
        cache_outputs: str = "copy",
    ) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.gc_threshold = gc_threshold
        self.pack_period = pack_period
        self.redact_keys: list[str] = [] if redact_keys is None else redact_keys
        self.redact_values: list[str] = [] if redact_values is None else redact_values
        self.env_record: list[str] = list(DEFAULT_ENV_RECORD) if env_record is None else env_record
        self.snapshot_untracked = snapshot_untracked
        self.snapshot_push = snapshot_push
        self.snapshot_max_file_size = snapshot_max_file_size
        self.snapshot_max_files = snapshot_max_files
        self.snapshot_max_total_size = snapshot_max_total_size
        # How recorded outputs enter the data cache: copy (a reflink where possible,
        # else a copy), reflink (only a reflink: never a full copy) or none (hashes only).
        self.cache_outputs = cache_outputs

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Config({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": CONFIG_SCHEMA,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "gc": {"threshold": self.gc_threshold, "period": self.pack_period},
            "redact": {"keys": self.redact_keys, "values": self.redact_values},
            "env": {"record": self.env_record},
            "snapshot": {
                "untracked": self.snapshot_untracked,
                "push": self.snapshot_push,
                "max_file_size": self.snapshot_max_file_size,
                "max_files": self.snapshot_max_files,
                "max_total_size": self.snapshot_max_total_size,
            },
        }

    def with_git_config(self, git_config: dict[str, str]) -> Config:
        """These settings with this clone's ``git config cmfgit.snapshot.*`` applied
        (the clone wins over the committed ``.cmf/config.yaml``)."""
        found = {name: git_config[key] for name, key in _GIT_SNAPSHOT_KEYS.items() if key in git_config}
        if not found:
            return self
        cfg = Config(**vars(self))
        for name, raw in found.items():
            where = f"git config {_GIT_SNAPSHOT_KEYS[name]}"
            if name in ("untracked", "push"):
                value: bool | int = _git_bool(raw, where)
            else:
                value = _git_count(raw, where, "a number of files" if name == "max_files" else "a size in bytes")
            setattr(cfg, f"snapshot_{name}", value)
        return cfg


def _get(doc: dict[str, Any], section: str, key: str, kind: type, default: Any, where: str) -> Any:
    part = doc.get(section) or {}
    if not isinstance(part, dict):
        raise RecordError(where, f"'{section}' must be a mapping")
    value = part.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise RecordError(where, f"'{section}.{key}' must be a {kind.__name__}")
    return value


def load_config(repo: Repo) -> Config:
    where = str(repo.config_path)
    try:
        raw = repo.config_path.read_bytes()
    except FileNotFoundError:
        return Config()
    doc = canonical.load(raw, where) or {}
    if not isinstance(doc, dict):
        raise RecordError(where, "must be a YAML mapping")
    schema = doc.get("schema", CONFIG_SCHEMA)
    if schema != CONFIG_SCHEMA:
        raise RecordError(where, f"unknown config schema {schema!r}")
    cfg = Config()
    for key in ("pipeline", "stage"):
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(where, f"'{key}' must be a string")
        setattr(cfg, key, value or None)
    cfg.gc_threshold = _get(doc, "gc", "threshold", int, cfg.gc_threshold, where)
    cfg.pack_period = _get(doc, "gc", "period", str, cfg.pack_period, where)
    if cfg.pack_period not in ("year", "month", "day"):
        raise RecordError(where, "'gc.period' must be year, month or day")
    cfg.redact_keys = _get(doc, "redact", "keys", list, [], where)
    cfg.redact_values = _get(doc, "redact", "values", list, [], where)
    cfg.env_record = _get(doc, "env", "record", list, cfg.env_record, where)
    cfg.snapshot_untracked = _get(doc, "snapshot", "untracked", bool, cfg.snapshot_untracked, where)
    cfg.snapshot_push = _get(doc, "snapshot", "push", bool, cfg.snapshot_push, where)
    for name in ("max_file_size", "max_files", "max_total_size"):
        value = _get(doc, "snapshot", name, int, getattr(cfg, f"snapshot_{name}"), where)
        if value < 0:
            raise RecordError(where, f"'snapshot.{name}' must not be negative")
        setattr(cfg, f"snapshot_{name}", value)
    cfg.cache_outputs = _get(doc, "data", "cache_outputs", str, cfg.cache_outputs, where)
    if cfg.cache_outputs not in CACHE_MODES:
        raise RecordError(where, "'data.cache_outputs' must be copy, reflink or none")
    return cfg


def _git_bool(raw: str, where: str) -> bool:
    word = raw.strip().lower()
    if word in _GIT_TRUE:
        return True
    if word in _GIT_FALSE:
        return False
    raise RecordError(where, f"{raw!r} is not a boolean (true or false)")


def _git_count(raw: str, where: str, what: str) -> int:
    """A non-negative integer, with git's optional k, m or g suffix."""
    text = raw.strip().lower()
    unit = _GIT_UNITS.get(text[-1:], 0) if text[-1:].isalpha() else 1
    digits = text[:-1] if text[-1:].isalpha() else text
    if not unit or not digits.isascii() or not digits.isdigit():
        raise RecordError(where, f"{raw!r} is not {what}")
    return int(digits) * unit


def load_document(repo: Repo) -> dict[str, Any]:
    """The config file as a mapping (empty if there is none), for a setting
    owned elsewhere (``data:`` is cmfgit/data/remote.py's)."""
    where = str(repo.config_path)
    try:
        raw = repo.config_path.read_bytes()
    except FileNotFoundError:
        return {"schema": CONFIG_SCHEMA}
    doc = canonical.load(raw, where) or {}
    if not isinstance(doc, dict):
        raise RecordError(where, "must be a YAML mapping")
    return doc


def save_document(repo: Repo, doc: dict[str, Any]) -> None:
    """Write the config mapping back, canonical and atomic."""
    from cmfgit.fsutil import atomic_write

    atomic_write(repo.config_path, canonical.dump(doc))


def site_name(repo: Repo, git_config: dict[str, str] | None = None) -> str:
    """This clone's site: $CMFGIT_SITE, then git config cmfgit.site, then the host.

    ``git_config`` is the clone's config when the caller has read it already
    (log-run's git state holds ``cmfgit.*``); else it is asked of git."""
    env = getenv("CMFGIT_SITE")
    if env:
        return env
    if git_config is None:
        from cmfgit import gitutil

        configured = gitutil.config_get(repo.root, "cmfgit.site")
    else:
        configured = git_config.get("cmfgit.site")
    if configured:
        return configured
    return os.uname().nodename or "unknown"  # socket.gethostname(), without importing socket
