"""Progress with an ETA on stderr, while the audit reads and while it asks Kraken's REST API.

On a terminal: a bar (rich) that disappears when done. Elsewhere (a Quix Job's log, a pipe):
a line every `interval` seconds, `Reading trades: 1,200,000 of ~5,000,000 records (24 %),
180,000/s, about 21 s left`. Totals are estimates (the topic's end offsets, or the REST calls a
window needs), so the ETA is one too.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress", "eta_text"]

logger = logging.getLogger("audit")

Update = Callable[[int, "int | None"], None]


def eta_text(done: int, total: int | None, elapsed: float) -> str:
    """`about 21 s left` from what is done of an estimated total in `elapsed` seconds."""
    if not total or done <= 0 or elapsed <= 0:
        return "time left unknown"
    left = max(total - done, 0) * elapsed / done
    if left >= 90:
        return f"about {left / 60:.0f} min left"
    return f"about {left:.0f} s left"


class Progress:
    """Reports progress of tasks on `stream`.

    :param interval: seconds between two lines when `stream` is not a terminal.
    :param enabled: False prints nothing (tests, `--json` into a pipe still shows lines).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval: float = 10.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.clock = clock

    @contextmanager
    def task(self, label: str, unit: str) -> Iterator[Update]:
        """`with progress.task("Reading trades", "records") as update: update(done, total)`."""
        if not self.enabled:
            yield lambda done, total: None
        elif self.stream.isatty():
            with self._bar(label, unit) as update:
                yield update
        else:
            yield self._lines(label, unit)

    @contextmanager
    def _bar(self, label: str, unit: str) -> Iterator[Update]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeRemainingColumn(),
        )
        with RichProgress(*columns, console=Console(file=self.stream), transient=True) as bar:
            task = bar.add_task(label, total=None)

            def update(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=max(total, done) if total else None)

            yield update

    def _lines(self, label: str, unit: str) -> Update:
        started = self.clock()
        last = [started]

        def update(done: int, total: int | None) -> None:
            now = self.clock()
            if now - last[0] < self.interval:
                return
            last[0] = now
            elapsed = now - started
            of = f" of ~{total:,}" if total else ""
            share = f" ({100 * done / total:.0f} %)" if total else ""
            rate = done / elapsed if elapsed > 0 else 0.0
            print(
                f"{label}: {done:,}{of} {unit}{share}, {rate:,.0f}/s, "
                f"{eta_text(done, total, elapsed)}",
                file=self.stream,
                flush=True,
            )

        return update
