"""Per-pair trade_id bookkeeping: drop what was already published, spot what was missed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .trade import Trade

__all__ = ["Gap", "Sequenced", "TradeSequencer", "group_by_pair"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Trades `first_missing..last_missing` (inclusive) of `pair` were never seen."""

    pair: str
    first_missing: int
    last_missing: int
    after_timestamp_ms: int  # time of the last trade published before the gap

    @property
    def size(self) -> int:
        return self.last_missing - self.first_missing + 1


@dataclass(slots=True)
class Sequenced:
    """What `TradeSequencer.accept` made of one pair's trades.

    `fresh` continues the published sequence without a hole. When a trade jumps past the
    next expected trade_id, `gap` says what is missing and `after_gap` holds that trade and
    the rest, unpublished, so the caller can fetch the gap first.
    """

    fresh: list[Trade] = field(default_factory=list)
    duplicates: int = 0
    gap: Gap | None = None
    after_gap: list[Trade] = field(default_factory=list)


def group_by_pair(trades: Iterable[Trade]) -> dict[str, list[Trade]]:
    """Trades per pair, each list sorted by trade_id."""
    by_pair: dict[str, list[Trade]] = {}
    for trade in trades:
        by_pair.setdefault(trade.symbol, []).append(trade)
    for batch in by_pair.values():
        if len(batch) > 1:
            batch.sort(key=_trade_id)
    return by_pair


class TradeSequencer:
    """Remembers the last published trade_id per pair.

    Kraken's trade_id rises by one per trade within a pair, so a trade at or below the
    last one is a duplicate (the snapshot re-sent after a reconnect), and a jump of more
    than one is a gap. A pair seen for the first time starts its sequence.
    """

    def __init__(self, positions: Mapping[str, tuple[int, int]] | None = None) -> None:
        """:param positions: pair -> (last trade_id, its epoch ms), e.g. restored state."""
        self._last: dict[str, tuple[int, int]] = dict(positions or {})

    def last(self, pair: str) -> tuple[int, int] | None:
        """(trade_id, timestamp_ms) of the last published trade of `pair`, if any."""
        return self._last.get(pair)

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        """A copy of pair -> (last trade_id, timestamp_ms)."""
        return dict(self._last)

    def accept(self, pair: str, trades: list[Trade], *, stop_at_gap: bool = True) -> Sequenced:
        """Take one pair's trades (sorted by trade_id) and advance past the fresh ones.

        :param stop_at_gap: when False, a gap is reported but the trades after it are
            accepted too (the caller will not or cannot repair it).
        """
        result = Sequenced()
        last = self._last.get(pair)
        for index, trade in enumerate(trades):
            if last is not None:
                if trade.trade_id <= last[0]:
                    result.duplicates += 1
                    continue
                if trade.trade_id > last[0] + 1 and result.gap is None:
                    result.gap = Gap(pair, last[0] + 1, trade.trade_id - 1, last[1])
                    if stop_at_gap:
                        result.after_gap = trades[index:]
                        break
            last = (trade.trade_id, trade.timestamp_ms)
            result.fresh.append(trade)
        if result.fresh:
            self._last[pair] = last  # type: ignore[assignment]
        return result


def _trade_id(trade: Trade) -> int:
    return trade.trade_id
