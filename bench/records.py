"""The output record, topic settings and producer settings shared by the non-Quix contenders.

No Quix Streams here: the direct loop and the ceiling import this module, and they must
measure plain websocket-client + orjson + confluent-kafka. The record itself is the
pipeline's own `normalize_trade` (pure Python, no Quix Streams), so the schemas cannot drift.
"""

from __future__ import annotations

from typing import Any

import orjson

from sources.kraken.trade import parse_timestamp_ms
from sources.steps.normalize import normalize_trade

__all__ = [
    "BASE_PRODUCER_CONFIG",
    "OUTPUT_PARTITIONS",
    "OUTPUT_RETENTION",
    "SENT_HEADER",
    "output_record",
    "timestamp_ms",
]

# The pipeline's output topic as its defaults make it (settings `partitions`, `retention`).
OUTPUT_PARTITIONS = 3
OUTPUT_RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}

# What Quix Streams gives every producer before the application's own settings: idempotence,
# and the Java client's partitioner so that a key lands on the same partition everywhere.
BASE_PRODUCER_CONFIG: dict[str, Any] = {"enable.idempotence": True, "partitioner": "murmur2"}

# The ceiling stamps each record with the time it produced it (epoch ns, 8 bytes big-endian):
# it has no simulator to record send times.
SENT_HEADER = "bench-sent-ns"


def timestamp_ms(timestamp: str) -> int:
    """`2023-09-25T07:49:37.708706Z` -> epoch milliseconds, in integer arithmetic."""
    return parse_timestamp_ms(timestamp)


def output_record(trade: dict[str, Any]) -> tuple[str, bytes, int]:
    """A Kraken v2 trade object -> (key, value, timestamp_ms) exactly as the pipeline writes it."""
    record = normalize_trade(trade)
    return record["pair"], orjson.dumps(record), record["timestamp_ms"]
