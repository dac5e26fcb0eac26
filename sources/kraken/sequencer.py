"""Per-pair trade_id bookkeeping: drop what was already published, spot what was missed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .trade import Trade

__all__ = ["Gap", "Sequenced", "TradeSequencer"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Trades `first_missing..last_missing` (inclusive) of `pair` were never seen."""

    pair: str
    first_missing: int
    last_missing: int
    # time of the last trade published before the gap (epoch ms), useful as a REST cursor
    after_timestamp_ms: int

    @property
    def size(self) -> int:
        return self.last_missing - self.first_missing + 1


@dataclass(slots=True)
class Sequenced:
    """What `TradeSequencer.accept` made of a batch."""

    fresh: dict[str, list[Trade]] = field(default_factory=dict)  # per pair, in trade_id order
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)


class TradeSequencer:
    """Remembers the last published trade_id per pair.

    Kraken's trade_id rises by one per trade within a pair, so a trade at or below the
    last one is a duplicate (the snapshot re-sent after a reconnect), and a jump of more
    than one is a gap. A pair seen for the first time starts the sequence.
    """

    def __init__(self, last_ids: Mapping[str, tuple[int, int]] | None = None) -> None:
        """:param last_ids: pair -> (last trade_id, its epoch ms), e.g. restored after a restart."""
        self._last: dict[str, tuple[int, int]] = dict(last_ids or {})

    def last(self, pair: str) -> tuple[int, int] | None:
        """(trade_id, timestamp_ms) of the last accepted trade of `pair`, if any."""
        return self._last.get(pair)

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        """A copy of pair -> (last trade_id, timestamp_ms)."""
        return dict(self._last)

    def accept(self, trades: Iterable[Trade]) -> Sequenced:
        """Split `trades` into fresh ones per pair (sorted), count duplicates, report gaps."""
        by_pair: dict[str, list[Trade]] = {}
        for trade in trades:
            by_pair.setdefault(trade.symbol, []).append(trade)
        result = Sequenced()
        for pair, batch in by_pair.items():
            if len(batch) > 1:
                batch.sort(key=_trade_id)
            fresh: list[Trade] = []
            last = self._last.get(pair)
            for trade in batch:
                if last is not None:
                    last_id = last[0]
                    if trade.trade_id <= last_id:
                        result.duplicates += 1
                        continue
                    if trade.trade_id > last_id + 1:
                        result.gaps.append(Gap(pair, last_id + 1, trade.trade_id - 1, last[1]))
                last = (trade.trade_id, trade.timestamp_ms)
                fresh.append(trade)
            if fresh:
                self._last[pair] = last  # type: ignore[assignment]
                result.fresh[pair] = fresh
        return result

    def advance(self, pair: str, trade_id: int, timestamp_ms: int) -> None:
        """Record that `pair` was published up to `trade_id` by other means (e.g. a backfill)."""
        current = self._last.get(pair)
        if current is None or trade_id > current[0]:
            self._last[pair] = (trade_id, timestamp_ms)


def _trade_id(trade: Trade) -> int:
    return trade.trade_id
