"""Whether a candle holds every trade of its window: the `complete` field.

Kraken's trade_id rises by one per trade within a pair, so a candle proves it is complete
when both hold:

- its own trades are contiguous: `trade_count == last_trade_id - first_trade_id + 1`
  (the trades topic holds each trade once);
- it continues the pair's previous candle: `first_trade_id == previous last_trade_id + 1`,
  so nothing is missing between them, however long the pair was quiet (windows without
  trades produce no candle, and need none).

The first candle of a pair (no previous candle known to this consumer group) is not
complete: the trades before its first one in its window may be missing (the trades topic
may start in the middle of the window). A trade dropped as late (beyond the grace period)
is missing from the candle of its window, which was already written; the gap it leaves
shows in the next candle, whose `first_trade_id` does not continue, or in its own candle
if it falls between that candle's first and last trade_id.

Use `Continuity` as a stateful step after the window (the state is per pair):

    sdf = sdf.apply(Continuity(), stateful=True)
"""

from __future__ import annotations

from typing import Any

from quixstreams.state import State

__all__ = ["PREVIOUS", "Continuity", "is_contiguous"]

PREVIOUS = "previous_candle"  # state key: {"start": window_start_ms, "last": id, "before": id}


def is_contiguous(candle: dict[str, Any]) -> bool:
    """True when the candle's trade_ids have no hole between its first and last."""
    return candle["trade_count"] == candle["last_trade_id"] - candle["first_trade_id"] + 1


class Continuity:
    """Set `complete` on each candle of a pair, in window order (a stateful `apply`).

    The state keeps the pair's previous candle's window start and last trade_id, and the
    last trade_id before that one, so that a candle written again after a crash (the same
    window) is judged as it was the first time.
    """

    def __call__(self, candle: dict[str, Any], state: State) -> dict[str, Any]:
        stored = state.get(PREVIOUS)
        start = candle["window_start_ms"]
        if stored is None:
            before = None
        elif stored["start"] == start:  # this candle again (a replay): as the first time
            before = stored["before"]
        else:
            before = stored["last"]
        candle["complete"] = (
            before is not None and candle["first_trade_id"] == before + 1 and is_contiguous(candle)
        )
        state.set(PREVIOUS, {"start": start, "last": candle["last_trade_id"], "before": before})
        return candle
