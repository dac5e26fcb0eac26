"""Counters of the candles pipeline and the one-line summary built from them."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

__all__ = ["CandleStats", "Reporter"]

logger = logging.getLogger(__name__)


class CandleStats:
    """What the pipeline did since it started: candles per pair, late and invalid trades.

    Written by the processing loop, read by a reporting thread (plain counters, no lock
    needed for a log line).
    """

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self.candles: Counter[str] = Counter()
        self.late: Counter[str] = Counter()
        self.invalid = 0
        self.last_late = ""
        self._reported = (0, 0, 0)

    def on_late(
        self,
        value: Any,
        key: Any,
        timestamp_ms: int,
        late_by_ms: int,
        start: int,
        end: int,
        store_name: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> bool:
        """The window's `on_late` callback: count the trade; False mutes Quix's own warning."""
        self.late[str(key)] += 1
        trade_id = value.get("trade_id") if isinstance(value, dict) else None
        self.last_late = (
            f"{key} trade_id={trade_id} timestamp_ms={timestamp_ms} "
            f"window=[{start},{end}) late_by_ms={late_by_ms} at {topic}[{partition}]@{offset}"
        )
        return False

    def count_candle(self, record: dict[str, Any]) -> None:
        """Count one emitted candle (an `sdf.update` step)."""
        self.candles[record["pair"]] += 1

    def count_invalid(self, record: Any) -> None:
        """Count one input record that is not a trade; the first few are logged."""
        self.invalid += 1
        if self.invalid <= 3:
            logger.warning("Skipping a record that is not a trade: %.200r", record)

    def summary(self) -> str:
        """One line: candles per pair, then late (beyond grace) and invalid records."""
        per_pair = " ".join(f"{pair}={n}" for pair, n in sorted(self.candles.items()))
        late = sum(self.late.values())
        line = (
            f"candles: {per_pair or 'none'} | total={sum(self.candles.values())} "
            f"late_trades_dropped={late} invalid={self.invalid}"
        )
        if late:
            line += f" (grace {self.grace_ms} ms; last late: {self.last_late})"
        return line

    def changed(self) -> bool:
        """True when a counter moved since the last call that returned True."""
        now = (sum(self.candles.values()), sum(self.late.values()), self.invalid)
        if now == self._reported:
            return False
        self._reported = now
        return True


class Reporter(threading.Thread):
    """Logs `stats.summary()` every `interval` seconds when something changed."""

    def __init__(self, stats: CandleStats, interval: float, log: logging.Logger) -> None:
        super().__init__(name="candles-stats", daemon=True)
        self._stats, self._interval, self._log = stats, interval, log
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self._interval):
            if self._stats.changed():
                self._log.info(self._stats.summary())

    def stop(self) -> None:
        self._done.set()
