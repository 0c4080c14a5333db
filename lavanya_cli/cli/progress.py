"""The one progress bar of a batch, local or on Ray: on a copy of the terminal made as it starts
(while a Ray batch runs, standard error is Ray's log), shown only on a terminal; otherwise a no-op."""

from __future__ import annotations

import os
import sys
from typing import Any


class ProgressBar:
    """``start(total)`` once the work is known, then ``advance(audio_seconds)`` per ``unit`` done
    (sentences in this process, jobs on Ray), with the audio made so far."""

    def __init__(self, enabled: bool, unit: str):
        self.enabled = enabled and sys.stderr.isatty()
        self.unit = unit
        self._progress: Any = None
        self._terminal: Any = None
        self._task: Any = None
        self._audio = 0.0

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", errors="replace")
            self._progress = Progress(TextColumn("speaking"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(f"{self.unit}, {{task.fields[audio]:.1f}} s of audio"),
                                      TimeElapsedColumn(), console=Console(file=self._terminal, highlight=False),
                                      transient=True)
            self._progress.__enter__()
        return self

    def start(self, total: int, *_: object) -> None:
        if self._progress is not None and total > 1:
            self._task = self._progress.add_task("speaking", total=total, audio=0.0)

    def advance(self, audio_seconds: float = 0.0) -> None:
        if self._task is not None:
            self._audio += audio_seconds or 0.0
            self._progress.update(self._task, advance=1, audio=self._audio)

    def __exit__(self, *exc_info: object) -> bool:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)
            self._terminal.close()
        return False
