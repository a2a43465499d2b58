"""cmfgit: a git-native Common Metadata Framework.

``import cmfgit`` is cheap: the API is imported on first use, so the hot
commands (log-run, merge-driver, hooks) that start with ``python -m cmfgit``
pay only for what they use.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Run", "retract", "run", "step", "tag", "__version__"]

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

    from cmfgit.api import Run, retract, run, tag
    from cmfgit.decorator import step


def __getattr__(name: str) -> Any:
    if name in ("run", "Run", "tag", "retract"):
        from cmfgit import api

        value = getattr(api, name)
        globals()[name] = value  # later lookups skip this function (a sweep calls cmfgit.run per run)
        return value
    if name == "step":
        from cmfgit.decorator import step

        globals()["step"] = step
        return step
    raise AttributeError(f"module 'cmfgit' has no attribute {name!r}")
