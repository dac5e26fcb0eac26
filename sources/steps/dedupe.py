"""The dataframe's guard against duplicates: a stateful step keyed by pair.

The source drops what it published before, but a source that crashed after producing and
before committing its position publishes those trades again when it restarts, and a
dataframe that crashed re-processes what it read since its last commit. This step remembers
the last trade_id that went through for each pair (in Quix Streams state, which in
`exactly-once` mode commits in the same transaction as the output) and drops anything not
newer. In `at-least-once` mode that state may lag behind what reached the output before a
crash, so the step can be seeded with the last trade_id of each pair found in the output
topic at start (`steps.last_written`): the larger of the two wins.

Limits: the seed reads `pair` and `trade_id` of the output records; a user transform that
drops or rewrites them (or filters a pair's last trades out) leaves that pair unseeded, and
then only the step's own state guards it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quixstreams.state import State

__all__ = ["LAST_TRADE_ID", "DropPublished", "drop_published"]

LAST_TRADE_ID = "last_trade_id"


class DropPublished:
    """Keep the trades of a source-topic message (one pair, trade_id order) not seen before.

    Use it with `sdf.apply(DropPublished(seed), stateful=True)`; the message key is the pair.

    :param seed: pair -> the last trade_id already in the output topic.
    """

    def __init__(self, seed: Mapping[str, int] | None = None) -> None:
        self.seed = dict(seed or {})

    def __call__(self, batch: list[dict[str, Any]], state: State) -> list[dict[str, Any]]:
        if not batch:
            return batch
        last = state.get(LAST_TRADE_ID, -1)
        if self.seed:
            last = max(last, self.seed.get(batch[0]["symbol"], -1))
        if batch[0]["trade_id"] > last:
            fresh = batch  # the usual case: everything is new
        else:
            fresh = [trade for trade in batch if trade["trade_id"] > last]
        if fresh:
            state.set(LAST_TRADE_ID, fresh[-1]["trade_id"])
        return fresh


drop_published = DropPublished()
