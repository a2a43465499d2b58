"""cmfgit: a git-native Common Metadata Framework.

``import cmfgit`` is cheap: the API is imported on first use, so the hot
commands (log-run, merge-driver, hooks) that start with ``python -m cmfgit``
pay only for what they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Run", "run", "__version__"]

if TYPE_CHECKING:
    from cmfgit.api import Run, run


def __getattr__(name: str) -> Any:
    if name in ("run", "Run"):
        from cmfgit import api

        return getattr(api, name)
    raise AttributeError(f"module 'cmfgit' has no attribute {name!r}")
