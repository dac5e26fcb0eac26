"""The dataframe's guard against duplicates: a stateful step keyed by pair.

The source drops what it published before, but a source that crashed after producing and
before committing its position publishes those trades again when it restarts, and a
dataframe that crashed re-processes what it read since its last commit. This step remembers
the last trade_id that went through for each pair (in Quix Streams state, which in
`exactly-once` mode commits in the same transaction as the output) and drops anything not
newer. In `at-least-once` mode that state may lag behind what reached the output before a
crash, so the step can be seeded with the last trade_id of each pair found in the output
topic at start (`steps.last_written`): the larger of the two wins.

Gap events (`kraken.gaps`: a JSON object where trade messages are lists) go through the
same step: a gap stands for its trade_ids, so one whose `last_trade_id` is not newer than
what went through is dropped (a replay), and one that passes moves the pair's last
trade_id to its end, as its trades would have.

Limits: the seed reads `pair` and `trade_id` of the output records; a user transform that
drops or rewrites them (or filters a pair's last trades out) leaves that pair unseeded, and
then only the step's own state guards it. Gap events have a seed of their own (`gap_seed`:
the last `last_trade_id` per pair in the gaps topic), which only ever drops gap events, never
trades: a gaps topic shared with another pipeline can hide a gap event there, not a trade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quixstreams.state import State

__all__ = ["LAST_TRADE_ID", "DropPublished", "drop_published"]

LAST_TRADE_ID = "last_trade_id"


class DropPublished:
    """Keep the trades of a source-topic message (one pair, trade_id order) not seen before.

    Use it with `sdf.apply(DropPublished(seed), stateful=True)`; the message key is the pair.

    :param seed: pair -> the last trade_id already in the output topic.
    :param on_dropped: told how many trades a message lost (e.g. a metrics counter).
    :param gap_seed: pair -> the last `last_trade_id` already in the gaps topic (a gap event
        written just before a crash, with none of the pair's later trades written yet).
    """

    def __init__(
        self,
        seed: Mapping[str, int] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        gap_seed: Mapping[str, int] | None = None,
    ) -> None:
        self.seed = dict(seed or {})
        self.on_dropped = on_dropped
        self.gap_seed = dict(gap_seed or {})

    def __call__(self, batch: list[dict[str, Any]], state: State) -> list[dict[str, Any]]:
        if type(batch) is dict:  # a gap event (or None: a replay of one)
            return self._gap(batch, state)  # type: ignore[return-value]
        if not batch:
            return batch
        last = state.get(LAST_TRADE_ID, -1)
        if self.seed:
            last = max(last, self.seed.get(batch[0]["symbol"], -1))
        if batch[0]["trade_id"] > last:
            fresh = batch  # the usual case: everything is new
        else:
            fresh = [trade for trade in batch if trade["trade_id"] > last]
            if self.on_dropped is not None:
                self.on_dropped(len(batch) - len(fresh))
        if fresh:
            state.set(LAST_TRADE_ID, fresh[-1]["trade_id"])
        return fresh

    def _gap(self, gap: dict[str, Any], state: State) -> dict[str, Any] | None:
        """A gap event if its range is newer than what went through, else None."""
        last = state.get(LAST_TRADE_ID, -1)
        if self.seed:
            last = max(last, self.seed.get(gap["pair"], -1))
        if self.gap_seed:
            last = max(last, self.gap_seed.get(gap["pair"], -1))
        if gap["last_trade_id"] <= last:
            return None
        state.set(LAST_TRADE_ID, gap["last_trade_id"])
        return gap


drop_published = DropPublished()
