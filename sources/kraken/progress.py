"""Progress of long REST runs, sans I/O: a pair's history (`backfill_since`) or a big gap.

A history of 30 days or the repair after a long downtime can take minutes to hours, one REST
page (up to 1,000 trades) a second for all pairs together. This answers, per pair, what the
user waits for: the date reached, the share of the span done, trades/s and an ETA. The
source tells it what it published; `progress_view` shows it (log lines, or a live display
in a terminal).

    progress = Progress()
    progress.start(pair, since_ms, until_ms, now=now)   # until_ms None: up to the present
    progress.advance(pair, last_ms, count, now)         # trades of `pair` published from REST
    progress.finish(pair)                               # the history ended, or live again
    progress.rows(now) / progress.lines(now)

`now` is the wall clock (epoch seconds, `time.time()`): a span "up to the present" ends
there, and rates are measured on it. A pair `advance`d without a `start` is a gap repair
starting at its first trade; it is shown only once it has run `min_age` seconds, so the
many one-page repairs never are.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["BACKFILL", "REPAIR", "PairProgress", "Progress", "format_duration", "format_line"]

BACKFILL, REPAIR = "backfill", "repair"
RATE_WINDOW = 30.0  # seconds of samples behind the rates and the ETA
MIN_AGE = 5.0  # seconds a repair runs before it is shown
MAX_LINES = 20  # most pairs in one report; the rest are counted
PRESENT_MS_PER_S = 1000.0  # how fast "the present" moves away from a span that chases it


@dataclass(frozen=True, slots=True)
class PairProgress:
    """Where one pair's REST run stands.

    :param kind: `history` or `repair`.
    :param fraction: share of the span done, 0 to 1.
    :param eta_s: seconds left at the recent pace; None while unknown (no pace yet).
    :param done: the run is over (kept for a display's last frame).
    """

    pair: str
    kind: str
    since_ms: int
    reached_ms: int
    end_ms: int
    fraction: float
    trades: int
    trades_per_s: float
    eta_s: float | None
    done: bool = False


@dataclass(slots=True)
class _Run:
    pair: str
    kind: str
    since_ms: int
    until_ms: int | None
    started: float
    reached_ms: int
    trades: int = 0
    shown: bool = False  # in a report already: its end is shown too
    samples: deque[tuple[float, int, int]] = field(default_factory=deque)  # now, reached, trades


class Progress:
    """The REST runs in progress, per pair; see the module docstring.

    :param rate_window: seconds of recent pages the rates and ETAs are measured over.
    :param min_age: seconds a repair (a pair advanced without `start`) runs before it is shown.
    """

    def __init__(self, rate_window: float = RATE_WINDOW, min_age: float = MIN_AGE) -> None:
        self.rate_window = rate_window
        self.min_age = min_age
        self._runs: dict[str, _Run] = {}
        self._done: dict[str, PairProgress] = {}  # shown runs that ended, until all have

    @property
    def active(self) -> bool:
        """True while any pair's run goes on."""
        return bool(self._runs)

    def start(
        self,
        pair: str,
        since_ms: int,
        until_ms: int | None = None,
        *,
        now: float,
        kind: str = BACKFILL,
    ) -> None:
        """A run of `pair` from `since_ms` to `until_ms` (None: up to the present).

        :param kind: `history`, shown at once; or `repair` (a gap whose end is known, e.g.
            the time of the first trade held behind it), shown once it lasts `min_age`.
        """
        self._begin(pair, kind, since_ms, until_ms, now)

    def advance(
        self, pair: str, last_ms: int, count: int, now: float, *, first_ms: int | None = None
    ) -> None:
        """`count` trades of `pair` published from REST, the last one of time `last_ms`.

        :param first_ms: the time of the first of them: where a repair not `start`ed begins.
        """
        run = self._runs.get(pair)
        if run is None:
            run = self._begin(pair, REPAIR, last_ms if first_ms is None else first_ms, None, now)
        run.reached_ms = max(run.reached_ms, last_ms)
        run.trades += count
        samples = run.samples
        samples.append((now, run.reached_ms, run.trades))
        while len(samples) > 2 and samples[1][0] <= now - self.rate_window:
            samples.popleft()

    def finish(self, pair: str) -> None:
        """The run of `pair` is over (cheap when it has none: call it on every live message).

        A run a report showed stays in `rows(with_done=True)` until no run is left.
        """
        run = self._runs.pop(pair, None)
        if run is None:
            return
        if run.shown:
            end = run.until_ms if run.until_ms is not None else max(run.reached_ms, run.since_ms)
            self._done[pair] = PairProgress(
                pair, run.kind, run.since_ms, end, end, 1.0, run.trades, 0.0, 0.0, done=True
            )

    def rows(self, now: float, *, with_done: bool = False) -> list[PairProgress]:
        """The runs shown now, in the order they started; `with_done`: those ended since the
        last time none was running too (a display's last frame)."""
        rows = []
        for run in self._runs.values():
            if run.kind == BACKFILL or now - run.started >= self.min_age:
                run.shown = True
                rows.append(self._row(run, now))
        if with_done:
            rows.extend(self._done.values())
        return rows

    def lines(self, now: float, limit: int = MAX_LINES) -> list[str]:
        """One log line per run shown, at most `limit` (the others are counted in one more)."""
        rows = self.rows(now)
        lines = [format_line(row) for row in rows[:limit]]
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more pairs in progress")
        return lines

    # --- inside -------------------------------------------------------------------------

    def _begin(self, pair: str, kind: str, since_ms: int, until_ms: int | None, now: float) -> _Run:
        if not self._runs:
            self._done.clear()  # a new round of runs: forget the last one's
        run = _Run(pair, kind, since_ms, until_ms, now, since_ms)
        run.samples.append((now, since_ms, 0))
        self._runs[pair] = run
        return run

    def _row(self, run: _Run, now: float) -> PairProgress:
        end_ms = run.until_ms if run.until_ms is not None else int(now * 1000)
        span = max(end_ms - run.since_ms, 1)
        fraction = min(max((run.reached_ms - run.since_ms) / span, 0.0), 1.0)
        first_at, first_reached, first_trades = run.samples[0]
        elapsed = now - first_at
        trades_per_s = (run.trades - first_trades) / elapsed if elapsed > 0 else 0.0
        pace = (run.reached_ms - first_reached) / elapsed if elapsed > 0 else 0.0  # ms per s
        if run.until_ms is None:
            pace -= PRESENT_MS_PER_S  # the end keeps moving
        remaining = max(end_ms - run.reached_ms, 0)
        eta = remaining / pace if pace > 0 else (0.0 if remaining == 0 else None)
        return PairProgress(
            run.pair,
            run.kind,
            run.since_ms,
            run.reached_ms,
            end_ms,
            fraction,
            run.trades,
            trades_per_s,
            eta,
        )


def format_line(row: PairProgress) -> str:
    """`Backfill of BTC/USD: reached 2024-05-01 10:00:00 UTC, 41.2 % of 30 d, 812 trades/s,
    ETA 12 s (3,000 trades so far)`."""
    what = "Backfill" if row.kind == BACKFILL else "Repair"
    return (
        f"{what} of {row.pair}: reached {format_time(row.reached_ms)}, "
        f"{row.fraction * 100:.1f} % of {format_duration((row.end_ms - row.since_ms) / 1000)}, "
        f"{row.trades_per_s:,.0f} trades/s, ETA {format_eta(row.eta_s)} "
        f"({row.trades:,} trades so far)"
    )


def format_time(epoch_ms: int) -> str:
    """`2024-05-01 10:00:00 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_ms / 1000))


def format_eta(seconds: float | None) -> str:
    return "unknown" if seconds is None else format_duration(seconds)


def format_duration(seconds: float) -> str:
    """A duration in its two largest units: `45 s`, `3 min 20 s`, `2 h 05 min`, `30 d 4 h`."""
    seconds = max(round(seconds), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
