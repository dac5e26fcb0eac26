"""`last_trade_ids` against the real broker: records produced here, in batches of known sizes.

Each expectation is computed from the records this file produced (the highest trade_id of
each pair), not by reading the topic back.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient

from sources.steps import last_written
from sources.steps.last_written import last_trade_ids
from tests.support.kafka import create_topic, free_port, unique

# The pipeline's producer settings (pipelines/trades/main.py: PRODUCER_EXTRA_CONFIG).
PRODUCER_CONFIG = {"compression.type": "lz4", "linger.ms": 5}

# (partition or None for the key's partition, key, value) of one record
Row = tuple[int | None, bytes | None, bytes | None]


def trade(pair: str, trade_id: int, partition: int | None = None) -> Row:
    value = {"pair": pair, "trade_id": trade_id, "price": "1.5", "volume": "0.1", "side": "buy"}
    return partition, pair.encode(), orjson.dumps(value)


def produce(broker: str, topic: str, batches: Iterable[Sequence[Row]]) -> None:
    """Produce each batch, then flush: one flush, one record batch per partition (at most)."""
    producer = Producer({"bootstrap.servers": broker, **PRODUCER_CONFIG})
    errors: list[object] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            errors.append(error)

    for batch in batches:
        for partition, key, value in batch:
            extra = {} if partition is None else {"partition": partition}
            producer.produce(topic, value=value, key=key, on_delivery=delivered, **extra)
        assert producer.flush(30) == 0
    assert not errors


def expected(batches: Iterable[Sequence[Row]]) -> dict[str, int]:
    """The highest trade_id of each pair among the produced trades."""
    last: dict[str, int] = {}
    for batch in batches:
        for _, _, value in batch:
            try:
                record = orjson.loads(value) if value else None
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and type(record.get("trade_id")) is int:
                pair = record.get("pair")
                if isinstance(pair, str):
                    last[pair] = max(last.get(pair, record["trade_id"]), record["trade_id"])
    return last


def split(rows: list[Row], sizes: Iterable[int]) -> list[list[Row]]:
    """`rows` cut into consecutive batches of `sizes` (the rest in a last batch)."""
    batches, at = [], 0
    for size in sizes:
        batches.append(rows[at : at + size])
        at += size
    if at < len(rows):
        batches.append(rows[at:])
    return [batch for batch in batches if batch]


def config(broker: str) -> dict[str, str]:
    return {"bootstrap.servers": broker}


def test_single_partition(broker: str) -> None:
    topic = unique("lw-single")
    create_topic(broker, topic)
    rng = random.Random(1)
    ids = {"BTC/USD": 1000, "ETH/USD": 5}
    rows = []
    for _ in range(180):
        pair = rng.choice(sorted(ids))
        ids[pair] += rng.randint(1, 9)
        rows.append(trade(pair, ids[pair]))
    batches = split(rows, [1, 10, 100, 3, 1])  # ends on a batch of 1, after one of 65
    produce(broker, topic, batches)

    found = last_trade_ids(config(broker), topic)

    assert found == expected(batches) == ids
    assert found.complete and not found.unknown
    assert last_trade_ids(config(broker), topic, ["ETH/USD"]) == {"ETH/USD": ids["ETH/USD"]}


def test_several_partitions_several_pairs(broker: str) -> None:
    topic = unique("lw-parts")
    create_topic(broker, topic, partitions=3)
    rng = random.Random(2)
    pairs = {f"P{n}/USD": n % 3 for n in range(8)}  # pair -> its partition: 3, 3 and 2 pairs
    ids = dict.fromkeys(pairs, 0)
    rows = []
    for _ in range(1500):
        pair = rng.choice(sorted(pairs))
        ids[pair] += rng.randint(1, 1000)
        rows.append(trade(pair, ids[pair], pairs[pair]))
    batches = split(rows, [rng.randint(1, 300) for _ in range(12)])
    produce(broker, topic, batches)

    found = last_trade_ids(config(broker), topic, tail=200)

    assert found == expected(batches) == ids
    assert found.complete and not found.unknown


def test_last_batch_larger_than_the_tail(broker: str) -> None:
    """Tansu's end offset is that of the last batch's start: the read goes on to the true end."""
    topic = unique("lw-bigbatch")
    create_topic(broker, topic)
    before = [trade("XBT/EUR", n) for n in range(1, 6)]
    last_batch = [trade("ETH/EUR", n) for n in range(100, 1100)]  # one lz4 batch
    produce(broker, topic, [before, last_batch])

    found = last_trade_ids(config(broker), topic, ["ETH/EUR", "XBT/EUR"], tail=10)
    assert found == {"ETH/EUR": 1099}  # XBT/EUR: 1000 records back, the limit is 200
    assert found.unknown == {"XBT/EUR"}

    found = last_trade_ids(config(broker), topic, ["ETH/EUR", "XBT/EUR"], tail=10, max_records=2000)

    assert found == {"ETH/EUR": 1099, "XBT/EUR": 5}
    assert found.complete and not found.unknown


def test_pair_far_back(broker: str, caplog: pytest.LogCaptureFixture) -> None:
    """A pair written long before the tail: found by reading back, within `max_records`."""
    topic = unique("lw-farback")
    create_topic(broker, topic, partitions=2)
    old = [trade("OLD/USD", n, 1) for n in range(500, 520)]
    busy = [trade("BUSY/USD", n, 1) for n in range(1, 3001)]
    small = [trade("SMALL/USD", n, 0) for n in range(40, 50)]
    batches = [old, *split(busy, [700] * 5), small]
    produce(broker, topic, batches)
    everything = expected(batches)
    assert everything == {"OLD/USD": 519, "BUSY/USD": 3000, "SMALL/USD": 49}

    # the tail alone (no pairs asked): OLD is 3000 records back in its partition
    assert last_trade_ids(config(broker), topic, tail=100) == {
        "BUSY/USD": 3000,
        "SMALL/USD": 49,
    }
    # asked for: read back in steps (100, 200, 400, ...) until found
    asked = ["OLD/USD", "BUSY/USD", "SMALL/USD"]
    found = last_trade_ids(config(broker), topic, asked, tail=100, max_records=4000)
    assert found == everything
    assert found.complete and not found.unknown
    # beyond the limit: unknown, said, and not guessed
    with caplog.at_level(logging.WARNING, logger="sources.steps.last_written"):
        found = last_trade_ids(config(broker), topic, asked, tail=100, max_records=1500)
    assert found == {"BUSY/USD": 3000, "SMALL/USD": 49}
    assert found.unknown == {"OLD/USD"}
    assert any("OLD/USD" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    # a pair never written to a topic read whole: not found, and not unknown either
    found = last_trade_ids(config(broker), topic, ["NEW/USD", *asked], tail=100, max_records=4000)
    assert found == everything
    assert not found.unknown


def test_records_that_are_not_trades(broker: str) -> None:
    topic = unique("lw-junk")
    create_topic(broker, topic)
    trades = [trade("BTC/USD", n) for n in range(10, 20)]
    junk: list[Row] = [
        (None, b"BTC/USD", orjson.dumps({"pair": "BTC/USD", "price": "1"})),  # no trade_id
        (None, b"BTC/USD", orjson.dumps({"pair": "BTC/USD", "trade_id": "999"})),
        (None, b"BTC/USD", orjson.dumps({"pair": "BTC/USD", "trade_id": True})),
        (None, b"BTC/USD", orjson.dumps({"pair": "BTC/USD", "trade_id": 9.5e9})),
        (None, b"BTC/USD", orjson.dumps({"trade_id": 10**9})),  # no pair
        (None, b"JUNK/USD", orjson.dumps({"pair": "JUNK/USD"})),
        (None, b"BTC/USD", b"not json {"),
        (None, b"BTC/USD", orjson.dumps([{"pair": "BTC/USD", "trade_id": 10**9}])),
        (None, b"BTC/USD", None),  # a tombstone
        (None, None, b""),
        (None, b"BTC/USD", "\u00e9t\u00e9".encode("latin-1")),  # not UTF-8
    ]
    batches = [trades[:5], junk[:4], trades[5:], junk[4:]]  # junk after the last trade
    produce(broker, topic, batches)

    found = last_trade_ids(config(broker), topic)

    assert found == expected(batches) == {"BTC/USD": 19}
    assert found.complete


def test_empty_topic(broker: str) -> None:
    topic = unique("lw-empty")
    create_topic(broker, topic, partitions=2)
    started = time.monotonic()

    found = last_trade_ids(config(broker), topic, ["BTC/USD"], timeout=10)

    assert found == {}
    assert found.complete and not found.unknown  # read whole: never written
    assert time.monotonic() - started < 5


def test_missing_topic_is_not_created(broker: str) -> None:
    topic = unique("lw-missing")

    found = last_trade_ids(config(broker), topic, ["BTC/USD"], timeout=10)

    assert found == {}
    assert found.complete and not found.unknown
    topics = AdminClient(config(broker)).list_topics(timeout=10).topics
    assert topic not in topics  # the pipeline creates it later, with its own settings


def test_lz4_batches_of_many_records_keyed_by_pair(broker: str) -> None:
    """As the pipeline writes: keyed by pair (the producer's partitioner), lz4, linger 5 ms."""
    topic = unique("lw-lz4")
    create_topic(broker, topic, partitions=3)
    rng = random.Random(3)
    pairs = ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD", "DOGE/USD", "LTC/USD"]
    ids = {pair: rng.randint(10**6, 10**8) for pair in pairs}
    rows = []
    for _ in range(30_000):
        pair = rng.choice(pairs)
        ids[pair] += 1
        rows.append(trade(pair, ids[pair]))
    batches = split(rows, [12_000, 9_000, 6_000, 2_999])  # and a last record alone
    produce(broker, topic, batches)

    found = last_trade_ids(config(broker), topic, pairs)

    assert found == expected(batches) == ids
    assert found.complete and not found.unknown


def test_time_out_in_the_middle_of_a_window_never_guesses(
    broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline passes once the first records are read: nothing half read is reported."""
    topic = unique("lw-cut")
    create_topic(broker, topic, partitions=2)
    pairs = ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD"]
    rows = [trade(pairs[n % 4], 1000 + n, n % 2) for n in range(8000)]
    produce(broker, topic, split(rows, [2000] * 4))
    ids = expected([rows])

    class Clock:  # the real clock, an hour ahead once records came in
        ahead = 0.0

        def monotonic(self) -> float:
            return time.monotonic() + self.ahead

        def sleep(self, seconds: float) -> None:
            time.sleep(seconds)

    clock = Clock()

    class CutShort(Consumer):
        def consume(self, *args: Any, **kwargs: Any) -> list[Message]:
            messages = super().consume(*args, **kwargs)
            if any(message.error() is None for message in messages):
                clock.ahead = 3600.0
            return messages

    monkeypatch.setattr(last_written, "time", clock)
    monkeypatch.setattr(last_written, "Consumer", CutShort)
    monkeypatch.setattr(last_written, "CONSUME_BATCH", 100)  # a window is 3000 records

    found = last_trade_ids(config(broker), topic, pairs, tail=3000)

    assert clock.ahead  # the cut did happen
    assert found == {}
    assert found.unknown == set(pairs)
    assert not found.complete

    monkeypatch.undo()  # and with the time it needs
    assert last_trade_ids(config(broker), topic, pairs, tail=3000) == ids


def test_unreachable_broker_within_the_timeout() -> None:
    started = time.monotonic()

    found = last_trade_ids(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "trades", ["BTC/USD"], timeout=1.0
    )

    assert found == {}
    assert found.unknown == {"BTC/USD"}
    assert not found.complete
    assert time.monotonic() - started < 3


def test_gap_events_by_their_last_trade_id(broker: str) -> None:
    """The gaps topic seeds the dedupe step too: each pair's highest `last_trade_id`."""
    topic = unique("lw-gaps")
    create_topic(broker, topic)
    rng = random.Random(7)
    ends = {"BTC/USD": 100, "ETH/USD": 50}
    rows: list[Row] = []
    for _ in range(40):
        pair = rng.choice(sorted(ends))
        first = ends[pair] + rng.randint(1, 20)
        ends[pair] = first + rng.randint(0, 30)
        event = {"pair": pair, "first_trade_id": first, "last_trade_id": ends[pair], "count": 1}
        rows.append((None, pair.encode(), orjson.dumps(event)))
    produce(broker, topic, split(rows, [5, 20]))

    found = last_trade_ids(config(broker), topic, id_field="last_trade_id")

    assert found == ends
    assert last_trade_ids(config(broker), topic) == {}  # no record has a trade_id


def test_source_topic_messages_by_their_last_trade(broker: str) -> None:
    """The source topic's messages: one pair's Kraken trades as a JSON list (trade_id order),
    gap events (objects without `trade_id`), the end-of-backfill marker (an empty list)."""
    topic = unique("lw-source")
    create_topic(broker, topic, partitions=1)

    def message(pair: str, ids: range) -> Row:
        trades = [
            {"symbol": pair, "trade_id": n, "price": 1.5, "qty": 0.1, "timestamp_ms": 1000 + n}
            for n in ids
        ]
        return 0, pair.encode(), orjson.dumps(trades)

    gap = {"pair": "ETH/USD", "first_trade_id": 31, "last_trade_id": 39, "reason": "rest_lacks"}
    rows = [
        message("BTC/USD", range(1, 11)),
        message("ETH/USD", range(20, 31)),
        (0, b"ETH/USD", orjson.dumps(gap)),
        message("BTC/USD", range(11, 13)),
        (0, b"", orjson.dumps([])),
    ]
    produce(broker, topic, [rows])

    found = last_trade_ids(config(broker), topic)

    assert found == {"BTC/USD": 12, "ETH/USD": 30}
    assert found.positions() == {"BTC/USD": (12, 1012), "ETH/USD": (30, 1030)}
