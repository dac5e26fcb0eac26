"""Counters of the source and the periodic one-line summary built from them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["SourceStats"]


@dataclass
class SourceStats:
    """What the source did since it started.

    :param interval: seconds between two summary lines.
    """

    interval: float = 30.0
    trades: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    malformed: int = 0
    reconnects: int = 0
    gaps: int = 0
    missed_trades: int = 0
    backfilled: int = 0
    _next_summary: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._next_summary = time.monotonic() + self.interval

    def summary_due(self, now: float | None = None) -> bool:
        """True once per `interval`; the caller then logs `summary()`."""
        now = time.monotonic() if now is None else now
        if now < self._next_summary:
            return False
        self._next_summary = now + self.interval
        return True

    def summary(self) -> str:
        """One line: trades per pair, then the other counters."""
        per_pair = " ".join(f"{pair}={count}" for pair, count in sorted(self.trades.items()))
        return (
            f"trades: {per_pair or 'none'} | total={sum(self.trades.values())} "
            f"duplicates_dropped={self.duplicates} malformed={self.malformed} "
            f"reconnects={self.reconnects} gaps={self.gaps} missed={self.missed_trades} "
            f"backfilled={self.backfilled}"
        )
