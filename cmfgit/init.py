"""``cmfgit init``: make a git repository (or a fresh clone) ready for cmfgit.

Idempotent: in a clone of an initialised repository it only adds what git
does not carry across a clone (the merge driver in ``.git/config``, the
hooks). Committed files that already exist are never rewritten.
"""

from __future__ import annotations

import os
import sys

from cmfgit import canonical, gitutil
from cmfgit.config import Config, load_config
from cmfgit.errors import UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.repo import Repo, find_repo

ATTRIBUTES_LINE = ".cmf/objects/** merge=cmfgit linguist-generated=true"
ATTRIBUTES_BLOCK = f"# cmfgit: records merge as a union by id (cmfgit merge-driver)\n{ATTRIBUTES_LINE}\n"
CMF_GITIGNORE = "# temp files of interrupted writes\n.tmp-*\n"
DRIVER_NAME = "cmfgit: three-way union of records by id"


def driver_command() -> str:
    """The merge driver as git should call it: this very interpreter, else whichever
    cmfgit the shell finds (``launcher.py``); with none, the file stays conflicted."""
    from cmfgit import launcher

    return launcher.one_line(
        "merge-driver %O %A %B %L %P",
        "echo \"cmfgit: cmfgit not found ($PY is gone or lost cmfgit; no 'cmfgit' on PATH): "
        "%P is left conflicted. Reinstall cmfgit, then run 'cmfgit init'.\" >&2; exit 1",
    )


class InitResult:
    """What ``init`` did. A plain class: dataclasses costs log-run ~15 ms of imports."""

    def __init__(self, repo: Repo, created: list[str] | None = None, configured: list[str] | None = None) -> None:
        self.repo = repo
        self.created: list[str] = [] if created is None else created
        self.configured: list[str] = [] if configured is None else configured

    def __repr__(self) -> str:
        return f"InitResult(repo={self.repo!r}, created={self.created!r}, configured={self.configured!r})"


def driver_configured(repo: Repo, config: dict[str, str] | None = None) -> bool:
    if config is not None:
        return config.get("merge.cmfgit.driver") == driver_command()
    return gitutil.config_get(repo.root, "merge.cmfgit.driver") == driver_command()


def driver_usable(value: str | None) -> bool:
    """True if a configured ``merge.cmfgit.driver`` would run (its interpreter exists).

    A driver set by another interpreter that still exists is left alone, so
    two installs of cmfgit do not keep rewriting each other's setting.
    """
    if not value or "cmfgit merge-driver" not in value:
        return False
    if value == driver_command():
        return True
    from cmfgit import launcher

    program = launcher.recorded_python(value)
    if program is None:  # the older form: the interpreter, then -m cmfgit merge-driver
        import shlex

        try:
            program = shlex.split(value)[0]
        except (ValueError, IndexError):
            return False
    return os.path.isfile(program) and os.access(program, os.X_OK)


def configure_clone(repo: Repo) -> list[str]:
    """Per-clone settings that git does not copy on clone. Returns what changed."""
    from cmfgit import hooks

    changed: list[str] = []
    if gitutil.config_get(repo.root, "merge.cmfgit.driver") != driver_command():
        gitutil.config_set(repo.root, "merge.cmfgit.name", DRIVER_NAME)
        gitutil.config_set(repo.root, "merge.cmfgit.driver", driver_command())
        changed.append("merge driver (merge.cmfgit.driver)")
    changed += hooks.install_if_wanted(repo)
    return changed


_checked: set[str] = set()  # clones found configured by this process


def configure_and_say(repo: Repo) -> None:
    """:func:`ensure_configured`, and a line on stderr when it changed anything."""
    changed = ensure_configured(repo)
    if changed:
        print(f"cmfgit: this clone was not set up for cmfgit; configured {', '.join(changed)}", file=sys.stderr)


def ensure_configured(repo: Repo, driver: str | None = None, *, known: bool = False) -> list[str]:
    """Configure an initialised clone whose merge driver is missing or broken.

    Git silently falls back to a text merge without the driver, which is
    always the case in a fresh clone. ``driver`` is the configured value when
    the caller already read it (``known=True``), to save a git call. Checked
    once per process and clone. Returns what changed (empty: nothing to do).
    """
    key = str(repo.root)
    if key in _checked or not repo.initialized:
        return []
    if not known:
        driver = gitutil.config_get(repo.root, "merge.cmfgit.driver")
    changed = [] if driver_usable(driver) else configure_clone(repo)
    _checked.add(key)
    return changed


def init(start: str | None = None, site: str | None = None, pipeline: str | None = None) -> InitResult:
    if site is not None and (not site.strip() or not site.isprintable()):
        raise UsageError(f"--site {site!r}: a site name needs printable characters and no control characters")
    repo = find_repo(start)
    result = InitResult(repo)
    cmf = repo.cmf_dir
    (cmf / "objects").mkdir(parents=True, exist_ok=True)
    if not repo.config_path.exists():
        # The pipeline's name is written down now, so that every clone (whatever its
        # directory is called) records the same name.
        cfg = Config(pipeline=pipeline or default_pipeline(repo))
        atomic_write(repo.config_path, canonical.dump(cfg.to_document()))
        result.created.append(".cmf/config.yaml")
    elif pipeline and load_config(repo).pipeline != pipeline:
        _set_default_pipeline(repo, pipeline)
        result.configured.append(f"default pipeline '{pipeline}' (.cmf/config.yaml)")
    ignore = cmf / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, CMF_GITIGNORE.encode())
        result.created.append(".cmf/.gitignore")
    attributes = repo.root / ".gitattributes"
    text = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    if ATTRIBUTES_LINE not in text.splitlines():
        sep = "" if not text or text.endswith("\n") else "\n"
        atomic_write(attributes, (text + sep + ATTRIBUTES_BLOCK).encode())
        result.created.append(".gitattributes")
    result.configured += configure_clone(repo)
    if site:
        if gitutil.config_get(repo.root, "cmfgit.site") != site:
            gitutil.config_set(repo.root, "cmfgit.site", site)
            result.configured.append(f"site '{site}' (cmfgit.site)")
    return result


def _set_default_pipeline(repo: Repo, pipeline: str) -> None:
    """Change ``pipeline`` in an existing config, keeping its other settings."""
    doc = canonical.load(repo.config_path.read_bytes(), str(repo.config_path))
    doc["pipeline"] = pipeline
    atomic_write(repo.config_path, canonical.dump(doc))


def default_pipeline(repo: Repo) -> str:
    """The project's name: the last part of the origin remote's URL (without
    '.git'), else the repository's directory name."""
    url = gitutil.config_get(repo.root, "remote.origin.url") or ""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    name = name[:-4] if name.endswith(".git") else name
    return name if name and name.isprintable() and name not in (".", "..") else repo.name
