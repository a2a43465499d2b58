"""CMF's parquet tables: the step metrics and data slices ``cmfgit.compat`` writes, as cmflib does.

cmflib 0.1 writes both with pandas' ``DataFrame.to_parquet`` to a path with no
extension, under ``cmf_artifacts/<execution uuid>/``:

- ``metrics/<name>`` (``commit_metrics``): the rows ``log_metric`` gathered,
  ``DataFrame.from_dict(rows, orient="index")`` indexed by ``SequenceNumber``
  (1, 2, ...), one column per logged key;
- ``dataslice/<name>`` (``DataSlice.commit``): one row per file, indexed by
  ``Path``, with ``hash`` (the file's md5) and the file's custom properties.

The same frames are written here, so cmflib's readers (``pd.read_parquet``) and
cmfgit's (:mod:`cmfgit.query`) read them back. pandas and a parquet engine
(pyarrow; ``pip install 'cmfgit[cmf]'``) are imported only here, and checked
before anything is written: without them the call fails with one line, and no
file or record is half-made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmfgit.errors import CmfgitError

INSTALL = "pip install 'cmfgit[cmf]'"  # pandas and pyarrow


def pandas_for_parquet(what: str) -> Any:
    """pandas, once a parquet engine is known to be importable; else a one-line error naming ``what``."""
    try:
        import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional: cmfgit[cmf]
    except ImportError:
        raise CmfgitError(f"{what} needs pandas and pyarrow for CMF's parquet files: {INSTALL}") from None
    for engine in ("pyarrow", "fastparquet"):  # pandas' own order for engine="auto"
        try:
            __import__(engine)
        except ImportError:
            continue
        return pd
    raise CmfgitError(f"{what} needs pyarrow for CMF's parquet files: {INSTALL}")


def _parquet(frame: Any, what: str) -> bytes:
    try:
        data = frame.to_parquet(None)
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError among them
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CmfgitError(f"{what}: these values cannot be written as parquet: {first}") from None
    assert isinstance(data, bytes)
    return data


def step_metrics(rows: dict[int, dict[str, Any]], what: str = "commit_metrics") -> bytes:
    """The parquet bytes cmflib's ``commit_metrics`` writes for ``rows`` (sequence number -> values)."""
    pd = pandas_for_parquet(what)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.names = ["SequenceNumber"]
    return _parquet(frame, what)


def dataslice(props: dict[str, dict[str, Any]], what: str = "DataSlice.commit") -> bytes:
    """The parquet bytes cmflib's ``DataSlice.commit`` writes for ``props`` (path -> {hash, custom...})."""
    pd = pandas_for_parquet(what)
    frame = pd.DataFrame.from_dict(props, orient="index")
    frame.index.names = ["Path"]
    return _parquet(frame, what)


def read(path: Path, what: str) -> Any:
    """A parquet table as a pandas DataFrame (index and columns as written)."""
    pd = pandas_for_parquet(what)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise CmfgitError(f"{path}: not a parquet table ({str(exc).strip().splitlines()[0]})") from None


def rows_of(frame: Any) -> dict[str, dict[str, Any]]:
    """A data slice frame back as cmflib's ``props``: path -> {column: value}."""
    out: dict[str, dict[str, Any]] = frame.to_dict("index")
    return {str(k): dict(v) for k, v in out.items()}
