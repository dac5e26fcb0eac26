"""The dataframe's last step when no transform is configured: one step per source-topic
message writes its trades (and a gap event, to the gaps topic).

    sdf = sdf.update(MessageWriter(sdf, output_topic, pairs, GapWriter(sdf, gaps_topic)),
                     metadata=True)

What `GapWriter`, `is_trades`, `normalize_trades` (expanded into a row per trade), a filter
by pair, `set_timestamp` and `to_topic` do, without a dataframe row per trade. A trade
message of the source topic holds consecutive trades of one pair, so the pair is checked
once per message; each record is serialized once (orjson, with Quix Streams' JSON options:
the bytes `to_topic` writes) and produced, keyed by its pair with its trade's time as
timestamp, by the application's own producer -- the one `to_topic` uses: in `exactly-once`
mode in the same transaction, in `at-least-once` mode flushed before the same offset commit;
a failed delivery fails the next checkpoint alike.

With transforms the rows are needed (a transform extends a StreamingDataFrame of records),
and the pipeline keeps the row-per-trade steps (see `pipelines/trades/main.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import orjson
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models.topics import Topic

from .gaps import GapWriter
from .normalize import normalize_trade

__all__ = ["MessageWriter"]

# Quix Streams' JSON serializer (quixstreams.utils.json): the bytes `to_topic` writes
_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class MessageWriter:
    """An `update` step (`metadata=True`) for a message after the dedupe step: a trade
    message's trades go to `topic`, a gap event to `gaps` (a `GapWriter`); anything else (a
    dropped replay, the end-of-history marker) is left alone.

    :param sdf: the dataframe (its processing context's producer writes the records).
    :param topic: the output topic.
    :param pairs: the pairs written; a message of another pair is dropped.
    :param gaps: writes gap events.
    :param on_written: told how many records each message gave (e.g. a metrics counter).
    """

    def __init__(
        self,
        sdf: StreamingDataFrame,
        topic: Topic,
        pairs: Collection[str],
        gaps: GapWriter,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.topic = topic.name
        self.pairs = frozenset(pairs)
        self.gaps = gaps
        self.on_written = on_written
        self._producer = sdf.processing_context.producer

    def __call__(self, value: Any, key: Any, timestamp: int, headers: Any) -> None:
        if type(value) is not list:
            self.gaps(value, key, timestamp, headers)
            return
        if not value or value[0]["symbol"] not in self.pairs:
            return
        produce, topic, dumps = self._producer.produce, self.topic, orjson.dumps
        for trade in value:
            record = normalize_trade(trade)
            produce(
                topic=topic,
                key=record["pair"],
                value=dumps(record, option=_JSON_OPTIONS),
                timestamp=record["timestamp_ms"],
            )
        if self.on_written is not None:
            self.on_written(len(value))
