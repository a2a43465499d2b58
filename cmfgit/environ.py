"""Reading this process's environment variables cheaply.

``os.environ.get(name)`` costs ~3 µs when the variable is unset (a KeyError
is raised and caught inside ``os._Environ``), and iterating ``os.environ``
decodes every name. A sweep through the Python API asks for a few unset
variables per run, so those reads go through here. The fast path uses
``os.environ``'s own byte-keyed mapping (CPython on POSIX); anywhere else it
falls back to the public interface.
"""

from __future__ import annotations

import os

_POSIX = os.name == "posix"


def _data() -> dict[bytes, bytes] | None:
    data = getattr(os.environ, "_data", None) if _POSIX else None
    return data if type(data) is dict else None


def getenv(name: str) -> str | None:
    """``os.environ.get(name)``, without the cost of a miss."""
    data = _data()
    if data is not None and name.isascii() and name.encode() not in data:
        return None  # an ASCII name is stored as these bytes whatever the file system's encoding
    return os.environ.get(name)


def names() -> tuple[bytes, ...] | None:
    """The variable names as stored (a cheap cache key for what depends on
    which variables exist), or None when that is not available here."""
    data = _data()
    return None if data is None else tuple(data)
