"""One lane per pair: where its published sequence stands, its repair, its held live trades,
and when it was last heard of (to find a subscription gone silent).

A lane is plain data with small, obvious methods; the decisions (what is a gap, when a
repair starts, ends or is retried, what gets published) live in `feed.Feed`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from enum import IntEnum

from .trade import Trade

__all__ = ["Lane", "Repair", "RepairKind"]


class RepairKind(IntEnum):
    """What a repair is for; the lower value gets the REST budget first."""

    GAP = 0  # live trades are held behind it
    HISTORY = 1  # `backfill_since`: a pair's past, before its live trades


@dataclass(slots=True)
class Repair:
    """REST work for one lane: page from `since_ns` until `until_id`, or until caught up.

    :param until_id: the last trade_id it must reach; None: until Kraken has no newer page.
    :param first_missing: the first trade_id of a gap, for the log (None for history).
    """

    kind: RepairKind
    since_ns: int
    until_id: int | None
    first_missing: int | None = None
    attempts: int = 0  # failed attempts in a row
    retry_at: float = 0.0  # monotonic time before which it is not scheduled
    fetched: int = 0
    chasing: bool = False  # the held trades were let go: REST brings everything up to now

    def describe(self) -> str:
        if self.kind is RepairKind.HISTORY:
            return "history"
        return f"gap {self.first_missing}..{self.until_id}"


@dataclass(slots=True)
class Lane:
    """The state of one pair.

    :param position: (trade_id, timestamp_ms) of the last trade published, None before any.
    :param held: live trades waiting behind `repair`, sorted by trade_id, all after `position`.
    :param suspect: a trade whose trade_id leaps beyond `max_gap`, held until the next trade
        says whether the sequence really moved there (a poison id is dropped).
    :param turn: when the lane last got a REST page, for round-robin fairness.
    :param heard_at: monotonic time a live trade of the pair last arrived, or a probe went
        out; None until the feed's clock first ticks.
    :param probe: a resubscribe is out to check whether Kraken has newer trades: the
        trade_id the lane stood at when it went (-1: none yet); None when no probe is out.
    """

    pair: str
    position: tuple[int, int] | None = None
    repair: Repair | None = None
    held: list[Trade] = field(default_factory=list)
    suspect: Trade | None = None
    turn: int = 0
    heard_at: float | None = None
    probe: int | None = None

    def hold(self, trade: Trade) -> bool:
        """Keep a live trade behind the repair, in trade_id order; False for a duplicate."""
        held = self.held
        position = self.position
        if position is not None and trade.trade_id <= position[0]:
            return False
        if not held or trade.trade_id > held[-1].trade_id:
            held.append(trade)
            return True
        index = bisect_left([t.trade_id for t in held], trade.trade_id)
        if held[index].trade_id == trade.trade_id:
            return False
        held.insert(index, trade)
        return True

    def release(self) -> list[Trade]:
        """Take the held trades out (the repair is over)."""
        held, self.held = self.held, []
        return held

    def advance(self, trade: Trade) -> None:
        self.position = (trade.trade_id, trade.timestamp_ms)

    def start_probe(self, now: float) -> None:
        """A resubscribe goes out for this pair: remember where it stood, restart its clock."""
        self.probe = self.position[0] if self.position is not None else -1
        self.heard_at = now
