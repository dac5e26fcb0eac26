"""Gap events: each hole the core declares (`actions.Hole`), as the record the `gaps` topic holds.

The source writes a gap event to its topic like a trade message, keyed by pair, so that it
travels the same way as the trades and shares their delivery guarantee; it is a JSON object
where trade messages are JSON lists. The dataframe splits it off to the `gaps_output` topic
(`steps.gaps`).

A gap event says which trades will never be published and why:

    {"pair": "BTC/USD", "first_trade_id": 101, "last_trade_id": 150, "count": 50,
     "previous_timestamp_ms": 1695628177708, "next_timestamp_ms": 1695628180001,
     "reason": "rest_lacks", "detail": "Kraken REST served trade_id 100 then 151, none between",
     "detected_at_ms": 1695628190000}

`next_timestamp_ms` is the time of the first trade after the gap when the core publishes it
in the same round (it nearly always does), else null. `GapEvents` holds a hole until then:
the event goes to the topic just before that trade, never after it.
"""

from __future__ import annotations

from typing import Any

from .actions import Hole, HoleReason

__all__ = ["GAP_REASONS", "GapEvents", "gap_event"]

# reason -> what it means (the schema's enum and the docs' table, schemas/gap.v1.json)
GAP_REASONS = {reason.value: reason.meaning for reason in HoleReason}


def gap_event(hole: Hole, next_ms: int | None, detected_at_ms: int) -> dict[str, Any]:
    """The record of `hole`; `next_ms` is the time of the first trade after it, if known."""
    return {
        "pair": hole.pair,
        "first_trade_id": hole.first_id,
        "last_trade_id": hole.last_id,
        "count": hole.size,
        "previous_timestamp_ms": hole.after_ms,
        "next_timestamp_ms": next_ms,
        "reason": hole.reason.value,
        "detail": hole.detail,
        "detected_at_ms": detected_at_ms,
    }


class GapEvents:
    """Holes waiting for the time of the trade after them, per pair, within one round of
    the core's actions. Falsy when nothing waits (the usual case: one check per message)."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[Hole, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def hole(self, hole: Hole, detected_at_ms: int) -> dict[str, Any] | None:
        """Hold `hole`; returns the event of a hole of the same pair that waited before it
        (no trade came between the two: it has no trade after it)."""
        earlier = self._waiting.pop(hole.pair, None)
        self._waiting[hole.pair] = (hole, detected_at_ms)
        return gap_event(earlier[0], None, earlier[1]) if earlier else None

    def before(self, pair: str, first_ms: int) -> dict[str, Any] | None:
        """The pair publishes a trade of time `first_ms`: the event of its waiting hole."""
        waiting = self._waiting.pop(pair, None)
        return gap_event(waiting[0], first_ms, waiting[1]) if waiting else None

    def rest(self) -> list[dict[str, Any]]:
        """The end of the round: the events of the holes no trade followed."""
        events = [gap_event(hole, None, at) for hole, at in self._waiting.values()]
        self._waiting.clear()
        return events
