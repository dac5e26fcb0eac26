"""Showing `progress.Progress`: log lines every few seconds, or a live display in a terminal.

    view = progress_view(progress)   # ProgressDisplay if stdout is a terminal, else ProgressLog
    view.report(now)                 # on every turn of the source's loop; cheap when not due
    view.close()                     # when the source stops

The display uses `rich` (installed with Quix Streams). While it shows, this process's log
lines are printed above it instead of across it.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any, Protocol

from .progress import BACKFILL, PairProgress, Progress, format_eta, format_time

__all__ = ["LOG_INTERVAL", "ProgressDisplay", "ProgressLog", "ProgressView", "progress_view"]

logger = logging.getLogger(__name__)

LOG_INTERVAL = 5.0  # seconds between two reports in the log
REFRESH_INTERVAL = 0.5  # seconds between two frames of the display
DISPLAY_ROWS = 20  # most pairs on the display; the rest are counted


class ProgressView(Protocol):
    def report(self, now: float) -> None: ...

    def close(self) -> None: ...


def progress_view(progress: Progress, stream: IO[str] | None = None) -> ProgressView:
    """A live display when `stream` (stdout) is a terminal, else log lines."""
    stream = sys.stdout if stream is None else stream
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        terminal = False
    return ProgressDisplay(progress, stream) if terminal else ProgressLog(progress)


class ProgressLog:
    """Logs each run's line (`Progress.lines`) every `interval` seconds while any runs.

    :param interval: seconds between two reports; the first comes as soon as a run shows.
    """

    def __init__(self, progress: Progress, interval: float = LOG_INTERVAL) -> None:
        self.progress = progress
        self.interval = interval
        self._next = 0.0

    def report(self, now: float) -> None:
        if now < self._next or not self.progress.active:
            return
        lines = self.progress.lines(now)
        # nothing to show yet (young repairs only): look again in a second
        self._next = now + (self.interval if lines else min(self.interval, 1.0))
        for line in lines:
            logger.info(line)

    def close(self) -> None:
        pass


class ProgressDisplay:
    """A live table (pair, bar, share done, date reached, trades/s, ETA) redrawn in place.

    It appears when a run shows and goes when none is left, leaving its last frame (every
    pair done) on the screen.

    :param stream: the terminal.
    :param refresh: seconds between two frames.
    """

    def __init__(
        self, progress: Progress, stream: IO[str], refresh: float = REFRESH_INTERVAL
    ) -> None:
        from rich.console import Console

        self.progress = progress
        self.console = Console(file=stream, soft_wrap=True)  # log lines above it: unwrapped
        self.refresh = refresh
        self._live: Any = None
        self._next = 0.0
        self._streams: list[tuple[logging.StreamHandler, Any]] = []

    def report(self, now: float) -> None:
        active = self.progress.active
        if (active and now < self._next) or (self._live is None and not active):
            return  # the last frame (none active) is drawn at once
        self._next = now + self.refresh
        rows = self.progress.rows(now, with_done=True)
        if not rows:
            return
        if self._live is None:
            self._start()
        self._live.update(table(rows), refresh=True)
        if not self.progress.active:  # all done: leave the last frame
            self.close()

    def close(self) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        live.stop()
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams = []

    def _start(self) -> None:
        from rich.live import Live

        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._live.start()
        # Log handlers hold the real stderr/stdout: give them rich's proxies meanwhile, which
        # print above the display rather than across it.
        proxies = {id(sys.__stderr__): sys.stderr, id(sys.__stdout__): sys.stdout}
        for handler in _stream_handlers():
            proxy = proxies.get(id(handler.stream))
            if proxy is not None and proxy is not handler.stream:
                self._streams.append((handler, handler.setStream(proxy)))


def table(rows: list[PairProgress], limit: int = DISPLAY_ROWS) -> Any:
    """The display's frame: one row per pair, at most `limit` (the others counted)."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    frame = Table(
        title="Kraken REST: backfills and repairs", box=None, padding=(0, 1), header_style="bold"
    )
    frame.add_column("pair", no_wrap=True)
    frame.add_column("", min_width=10, ratio=1)  # the bar takes the width left
    for title in ("done", "reached (UTC)", "trades/s", "ETA", "trades"):
        frame.add_column(title, justify="left" if title == "reached (UTC)" else "right")
    for row in rows[:limit]:
        frame.add_row(
            row.pair if row.kind == BACKFILL else f"{row.pair} (repair)",
            ProgressBar(total=1.0, completed=row.fraction),
            f"{row.fraction * 100:.1f} %",
            format_time(row.reached_ms)[:16],
            "" if row.done else f"{row.trades_per_s:,.0f}",
            "done" if row.done else format_eta(row.eta_s),
            f"{row.trades:,}",
        )
    if len(rows) > limit:
        frame.add_row(f"... and {len(rows) - limit} more pairs")
    return frame


def _stream_handlers() -> list[logging.StreamHandler]:
    """The stream handlers of the loggers this process writes with."""
    loggers = [logging.getLogger(), logging.getLogger("quixstreams"), logging.getLogger("sources")]
    handlers = [h for log in loggers for h in log.handlers]
    return [h for h in dict.fromkeys(handlers) if type(h) is logging.StreamHandler]
