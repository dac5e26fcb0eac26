"""Exactly-once check of a long run, record by record, in bounded memory.

The simulator gives each pair's trades consecutive trade_ids, and every contender keeps a
pair on one partition, so each pair's ids should arrive as 1000, 1001, 1002, ... Instead of
a set of every id seen, `TradeSequence` keeps each pair's last id and the ids it skipped
(few, if any): enough to tell a gap, a late arrival that fills one, and a duplicate.
"""

from __future__ import annotations

import orjson
from confluent_kafka import Message

__all__ = ["TradeSequence"]

MAX_TRACKED = 100_000  # skipped ids remembered per pair; more are only counted


class TradeSequence:
    """Counts the trades of a topic and checks that each (pair, trade_id) comes once.

    Feed it batches with `add_output` (output topic: one normalized trade per record) or
    `add_source` (the pipeline's source topic: a JSON list of Kraken trades per record).
    Counters are read from other threads while one reading thread feeds it.
    """

    def __init__(self) -> None:
        self.trades = 0  # trades received, duplicates included
        self.distinct = 0  # distinct (pair, trade_id) received
        self.duplicates = 0  # trades received again
        self.late = 0  # trades that came after a higher id of their pair (they filled a gap)
        self.untracked = 0  # skipped ids beyond MAX_TRACKED: a late one counts as a duplicate
        self._last: dict[str, int] = {}
        self._skipped: dict[str, set[int]] = {}

    @property
    def missing(self) -> int:
        """Ids skipped inside the range received so far (not the ones still to come)."""
        return sum(len(ids) for ids in self._skipped.values()) + self.untracked

    def add_output(self, messages: list[Message]) -> None:
        """Records of an output topic: `{"pair": ..., "trade_id": ..., ...}` each."""
        for message in messages:
            record = orjson.loads(message.value())
            self.add(record["pair"], record["trade_id"])

    def add_source(self, messages: list[Message]) -> None:
        """Records of the pipeline's source topic: a list of Kraken trades each."""
        for message in messages:
            for trade in orjson.loads(message.value()):
                self.add(trade["symbol"], trade["trade_id"])

    def add(self, pair: str, trade_id: int) -> None:
        """One trade received."""
        self.trades += 1
        last = self._last.get(pair)
        if last is None or trade_id == last + 1:
            self._last[pair] = trade_id
            self.distinct += 1
        elif trade_id > last + 1:
            skipped = self._skipped.setdefault(pair, set())
            room = MAX_TRACKED - len(skipped)
            gap = range(last + 1, trade_id)
            skipped.update(gap[:room])
            self.untracked += max(0, len(gap) - room)
            self._last[pair] = trade_id
            self.distinct += 1
        elif trade_id in self._skipped.get(pair, ()):
            self._skipped[pair].discard(trade_id)
            self.late += 1
            self.distinct += 1
        else:
            self.duplicates += 1

    def describe(self, sent: int) -> str:
        """`exactly once` or what went wrong, against the `sent` trades."""
        if self.distinct == sent and not self.duplicates:
            text = f"exactly once ({self.distinct:,} of {sent:,})"
        else:
            text = (
                f"NOT exactly once: {self.distinct:,} distinct of {sent:,} sent, "
                f"{sent - self.distinct:,} missing, {self.duplicates:,} duplicates"
            )
        if self.late:
            text += f", {self.late:,} out of order"
        return text
