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
        cache_outputs: str = "copy",
    ) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.gc_threshold = gc_threshold
        self.pack_period = pack_period
        self.redact_keys: list[str] = [] if redact_keys is None else redact_keys
        self.redact_values: list[str] = [] if redact_values is None else redact_values
        self.env_record: list[str] = list(DEFAULT_ENV_RECORD) if env_record is None else env_record
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
        }


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
    cfg.cache_outputs = _get(doc, "data", "cache_outputs", str, cfg.cache_outputs, where)
    if cfg.cache_outputs not in CACHE_MODES:
        raise RecordError(where, "'data.cache_outputs' must be copy, reflink or none")
    return cfg


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
    """This clone's site: $CMFGIT_SITE, then git config cmfgit.site, then the host."""
    env = getenv("CMFGIT_SITE")
    if env:
        return env
    if git_config is not None and git_config.get("cmfgit.site"):
        return git_config["cmfgit.site"]
    return os.uname().nodename or "unknown"  # socket.gethostname(), without importing socket
