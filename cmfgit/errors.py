"""The one error family of cmfgit.

Every failure a user can cause is a :class:`CmfgitError`. The CLI (``main.py``)
maps it to a one-line message and its ``exit_code``; nothing else in the code
prints errors or calls ``sys.exit``.
"""

from __future__ import annotations

# Exit codes, in one place.
EXIT_ERROR = 1  # a user error or a failed check (fsck, verify)
EXIT_USAGE = 2  # bad command line: unknown option, bad value
EXIT_INTERNAL = 3  # a bug in cmfgit: unexpected exception
EXIT_INTERRUPTED = 130  # Ctrl-C


class CmfgitError(Exception):
    """Base of every error a user may see. ``str(err)`` is the one-line message."""

    exit_code = EXIT_ERROR


class UnreadableRecordsWarning(UserWarning):
    """Some records of a scope could not be read and are left out (``cmfgit fsck`` names them).

    The command line prints it as one line, ``cmfgit: warning: ...``.
    """


class UsageError(CmfgitError):
    """The command line or an API argument is malformed."""

    exit_code = EXIT_USAGE


class NotARepoError(CmfgitError):
    def __init__(self, path: str) -> None:
        super().__init__(f"not a git repository (or any parent): {path}")
        self.path = path


class NotInitializedError(CmfgitError):
    def __init__(self, root: str) -> None:
        super().__init__(f"cmfgit is not initialised in {root}: run 'cmfgit init'")
        self.root = root


class PathError(CmfgitError):
    """An artifact path is missing, outside the repository, or unreadable."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RecordError(CmfgitError):
    """A record is malformed: not YAML, not canonical, bad schema, bad hash."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class ForeignFormatError(CmfgitError):
    """A file from another tool (CMF's MLMD or export JSON) is unreadable, corrupt or of an unknown version."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ObjectNotFound(CmfgitError):
    def __init__(self, prefix: str, message: str | None = None) -> None:
        super().__init__(message or f"no record matches '{prefix}'")
        self.prefix = prefix


class AmbiguousPrefix(CmfgitError):
    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = ", ".join(c[:12] for c in candidates[:5])
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        super().__init__(f"prefix '{prefix}' is ambiguous: {shown}{more}")
        self.prefix = prefix
        self.candidates = candidates


class GitError(CmfgitError):
    """A git command failed: carries the command, its exit code and stderr."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        from cmfgit.redact import url_text  # git may echo a remote URL with its credentials

        super().__init__(url_text(f"git {' '.join(args)} failed ({returncode}): {_git_reason(stderr)}"))
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr


def _git_reason(stderr: str) -> str:
    """The line of git's stderr that says what went wrong: its first 'fatal:' or
    'error:' line (later lines are often advice, such as "and the repository
    exists."), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"


class CommandNotFound(CmfgitError):
    exit_code = 127

    def __init__(self, command: str) -> None:
        super().__init__(f"command not found: {command}")
        self.command = command


class ConflictError(CmfgitError):
    """A merge or push could not complete without losing records."""


class DataError(CmfgitError):
    """Artifact bytes: a data remote that fails, an object that is missing or corrupt."""


class RemoteError(DataError):
    """A data remote is unreachable, refuses access, or is misconfigured."""

    def __init__(self, remote: str, reason: str) -> None:
        super().__init__(f"data remote '{remote}': {reason}")
        self.remote = remote
        self.reason = reason


class MissingObjectError(DataError):
    """An object is in neither the cache nor the remote asked."""

    def __init__(self, object_id: str, where: str, path: str | None = None) -> None:
        shown = f" ({path})" if path else ""
        super().__init__(f"object {object_id}{shown} is not in {where}")
        self.object_id = object_id
        self.where = where
        self.path = path


class CorruptObjectError(DataError):
    """Downloaded bytes do not hash to the object's name: refused, nothing placed."""

    def __init__(self, object_id: str, where: str, got: str) -> None:
        super().__init__(
            f"object {object_id} from {where} is corrupt (its bytes hash to {got}): refused, nothing placed"
        )
        self.object_id = object_id
        self.where = where
        self.got = got


class BundleError(CmfgitError):
    """A bundle file (``cmfgit bundle``) is not one, is truncated, or fails a check: nothing was written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
