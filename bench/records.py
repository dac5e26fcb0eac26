"""The output record, topic settings and producer settings shared by the non-Quix contenders.

No Quix Streams here: the direct loop and the ceiling import this module, and they must
measure plain websocket-client + orjson + confluent-kafka.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = [
    "BASE_PRODUCER_CONFIG",
    "OUTPUT_PARTITIONS",
    "OUTPUT_RETENTION",
    "SENT_HEADER",
    "output_record",
    "timestamp_ms",
]

# The pipeline's output topic (`OUTPUT_TOPIC_CONFIG` in pipelines/trades/main.py).
OUTPUT_PARTITIONS = 3
OUTPUT_RETENTION = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}

# What Quix Streams gives every producer before the application's own settings: idempotence,
# and the Java client's partitioner so that a key lands on the same partition everywhere.
BASE_PRODUCER_CONFIG: dict[str, Any] = {"enable.idempotence": True, "partitioner": "murmur2"}

# The ceiling stamps each record with the time it produced it (epoch ns, 8 bytes big-endian):
# it has no simulator to record send times.
SENT_HEADER = "bench-sent-ns"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def timestamp_ms(timestamp: str) -> int:
    """`2023-09-25T07:49:37.708706Z` -> epoch milliseconds, in integer arithmetic."""
    return (datetime.fromisoformat(timestamp) - _EPOCH) // _MILLISECOND


def output_record(trade: dict[str, Any]) -> tuple[str, bytes, int]:
    """A Kraken v2 trade object -> (key, value, timestamp_ms) exactly as the pipeline writes it."""
    timestamp = trade["timestamp"]
    ms = timestamp_ms(timestamp)
    value = orjson.dumps(
        {
            "pair": trade["symbol"],
            "price": trade["price"],
            "volume": trade["qty"],
            "side": trade["side"],
            "order_type": trade["ord_type"],
            "trade_id": trade["trade_id"],
            "timestamp_ms": ms,
            "timestamp": timestamp,
        }
    )
    return trade["symbol"], value, ms
