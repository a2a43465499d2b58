"""Artifact data: the bytes behind the hashes that records name.

- ``cache.py``: the content-addressed cache of this clone (objects by blake3)
- ``manifest.py``: reading a directory's manifest object (format.md §5)
- ``copying.py``: reflink-or-copy, streamed hashing copies, atomic placement
- ``remote.py``: data remotes in ``.cmf/config.yaml``, and URL -> back-end
- ``local.py``: the back-end for a local or mounted path (no dependency)
- ``fsspec_remote.py``: every other scheme, through fsspec (an extra)
- ``selection.py``: which artifacts a data command is about (records, paths, hashes)
- ``transfer.py``: push, fetch and pull (parallel, verified, only what is missing)
- ``place.py``: putting cached bytes at paths: checkout, pull, get
- ``status.py``: recorded paths against the working tree, the cache and a remote
- ``cachegc.py``: dropping cache objects that no record refers to
- ``progress.py``: the transfer progress bar (on a terminal only)
- ``ops.py``: the commands as plain functions (the CLI, ``cmfgit push`` and ``pull --with-data``)
"""
