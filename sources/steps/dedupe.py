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
same step, deduplicated against gap events only: their own state (`last_gap_id`) and a seed
of their own (`gap_seed`: the last `last_trade_id` per pair in the gaps topic); one that goes
through stands for its trade_ids (no trade of it passes after it). A gap event is never
dropped because of trades: after a crash that delivered trade 201 but not the gap
event of 101..200, the replayed event still goes out. A `regression` event (the pair's
trade_ids went back) starts the pair over: trades from its `first_trade_id` on pass again.

Limits: the seed reads `pair` and `trade_id` of the output records; a user transform that
drops or rewrites them (or filters a pair's last trades out) leaves that pair unseeded, and
then only the step's own state guards it. A gaps topic shared with another pipeline can hide
a gap event there, never a trade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quixstreams.state import State

__all__ = ["LAST_TRADE_ID", "DropPublished", "drop_published"]

LAST_TRADE_ID = "last_trade_id"
LAST_GAP_ID = "last_gap_id"
LAST_REGRESSION = "last_regression"


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
        """A gap event if it is newer than the gap events that went through, else None."""
        pair = gap["pair"]
        if gap.get("reason") == "regression":
            return self._regression(gap, state)
        last = state.get(LAST_GAP_ID, -1)
        if self.gap_seed:
            last = max(last, self.gap_seed.get(pair, -1))
        if gap["last_trade_id"] <= last:
            return None
        state.set(LAST_GAP_ID, gap["last_trade_id"])
        if gap["last_trade_id"] > state.get(LAST_TRADE_ID, -1):  # it stands for its trades
            state.set(LAST_TRADE_ID, gap["last_trade_id"])
        return gap

    def _regression(self, gap: dict[str, Any], state: State) -> dict[str, Any] | None:
        """The pair's sequence starts over at `first_trade_id` (once per regression)."""
        mark = [gap["first_trade_id"], gap["last_trade_id"]]
        if state.get(LAST_REGRESSION) == mark:
            return None  # a replay
        state.set(LAST_REGRESSION, mark)
        state.set(LAST_TRADE_ID, gap["first_trade_id"] - 1)
        state.set(LAST_GAP_ID, gap["first_trade_id"] - 1)
        self.seed.pop(gap["pair"], None)
        self.gap_seed.pop(gap["pair"], None)
        return gap


drop_published = DropPublished()
