"""A progress bar for transfers: objects and bytes, on a terminal only.

rich is imported only when a bar is drawn (a script, a pipe or CI sees
nothing but the summary line).
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    def __init__(self, label: str, objects: int, total_bytes: int | None, enabled: bool | None = None) -> None:
        self.enabled = (sys.stderr.isatty() if enabled is None else enabled) and objects > 0
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()
        self.done = 0
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, TextColumn, TransferSpeedColumn

        columns: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
        if total_bytes:
            columns += [DownloadColumn(), TransferSpeedColumn()]
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(*columns, console=Console(stderr=True), transient=True)
        self._bytes = bool(total_bytes)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total_bytes if total_bytes else objects)

    def advance(self, size: int) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, advance=size if self._bytes else 1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
