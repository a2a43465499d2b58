"""Commands of the query area (registered on the shared app by import)."""

from __future__ import annotations

from cmfgit.cli import app  # noqa: F401
