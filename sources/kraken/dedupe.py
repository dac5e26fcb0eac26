"""The dataframe's guard against duplicates: a stateful step keyed by pair.

The source already drops what it published before, but a source that crashed after
producing and before committing its position publishes those trades again when it
restarts. This step remembers the last trade_id that went through for each pair (in
Quix Streams state, which in `exactly-once` mode commits in the same transaction as the
output) and drops anything not newer.
"""

from __future__ import annotations

from typing import Any

from quixstreams.state import State

__all__ = ["LAST_TRADE_ID", "drop_published"]

LAST_TRADE_ID = "last_trade_id"


def drop_published(batch: list[dict[str, Any]], state: State) -> list[dict[str, Any]]:
    """Keep the trades of `batch` (one pair, trade_id order) newer than any seen before.

    Use it with `sdf.apply(drop_published, stateful=True)`; the message key is the pair.
    """
    last = state.get(LAST_TRADE_ID, -1)
    fresh = [trade for trade in batch if trade["trade_id"] > last]
    if fresh:
        state.set(LAST_TRADE_ID, fresh[-1]["trade_id"])
    return fresh
