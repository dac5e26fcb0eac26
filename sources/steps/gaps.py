"""The dataframe's split of gap events from trades: gap events go to the `gaps_output` topic.

The source topic carries trade messages (JSON lists) and, rarely, gap events (JSON objects,
`kraken.gaps`). After the dedupe step, `GapWriter` writes each gap event to the gaps topic
and `is_trades` lets only trade messages on:

    sdf = sdf.update(GapWriter(sdf, gaps_topic), metadata=True)
    sdf = sdf.filter(is_trades)

The gap event is produced by the application's own producer (`sdf.processing_context`),
the one `to_topic` uses: in `exactly-once` mode it is part of the same transaction as the
trades, in `at-least-once` mode it is flushed before the same offset commit. Why not a
branch of the dataframe (`sdf.filter(is_gap).to_topic(...)`): Quix Streams copies every
value at a branch (pickle), so every trade message would be copied for the rare gap.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models.topics import Topic

__all__ = ["GapWriter", "gap_timestamp_ms", "is_trades", "trades_of"]


def is_trades(value: Any) -> bool:
    """True for a trade message (a list); gap events and dropped replays (None) stop here."""
    return type(value) is list


def trades_of(pairs: Collection[str]) -> Callable[[Any], bool]:
    """A filter for the trade messages of `pairs`, checked once per message before its trades
    are expanded into rows (a row per trade would check the same pair again and again).

    A trade message holds trades of one pair (`kraken.publish`), so its first trade names
    it; gap events, dropped replays (None) and empty lists stop here as with `is_trades`.

    :param pairs: the Kraken v2 symbols the pipeline writes.
    """
    wanted = frozenset(pairs)

    def of_pairs(value: Any) -> bool:
        return type(value) is list and bool(value) and value[0]["symbol"] in wanted

    return of_pairs


def gap_timestamp_ms(gap: dict[str, Any]) -> int:
    """The gap's Kafka timestamp: where it sits in trade time (the trade before it, else the
    one after it, else when it was detected)."""
    for field in ("previous_timestamp_ms", "next_timestamp_ms", "detected_at_ms"):
        value = gap.get(field)
        if type(value) is int:
            return value
    raise ValueError(f"gap event without a time: {gap!r}")


class GapWriter:
    """An `update` step (`metadata=True`) that writes each gap event to `topic`, keyed by
    its pair, with the gap's trade time as timestamp. Trade messages pass untouched.

    :ivar written: gap events written since the start.
    """

    def __init__(self, sdf: StreamingDataFrame, topic: Topic) -> None:
        self.topic = topic
        self.written = 0
        self._producer = sdf.processing_context.producer

    def __call__(self, value: Any, key: Any, timestamp: int, headers: Any) -> None:
        if type(value) is not dict:
            return
        message = self.topic.serialize(key=value["pair"], value=value)
        self._producer.produce(
            topic=self.topic.name,
            key=message.key,
            value=message.value,
            timestamp=gap_timestamp_ms(value),
        )
        self.written += 1
