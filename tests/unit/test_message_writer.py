"""The last step without transforms (`steps.write.MessageWriter`): one step per message writes
what the row-per-trade steps wrote, record for record."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from quixstreams.models.topics import Topic

from sources.steps.gaps import GapWriter
from sources.steps.normalize import normalize_trades
from sources.steps.write import MessageWriter
from tests.support.core import trades
from tests.unit.test_provenance_gaps import FakeDataFrame, gap, message

PAIRS = ("BTC/USD", "ETH/USD")


def _writer(sdf: FakeDataFrame, counted: list[int] | None = None) -> MessageWriter:
    output = Topic("trades", key_serializer="string", value_serializer="json")
    gaps = GapWriter(sdf, Topic("gaps", key_serializer="string", value_serializer="json"))  # type: ignore[arg-type]
    return MessageWriter(
        sdf,  # type: ignore[arg-type]
        output,
        PAIRS,
        gaps,
        on_written=counted.append if counted is not None else None,
    )


def _as_to_topic_writes(batch: list[dict[str, Any]]) -> list[tuple[bytes, bytes, int]]:
    """What `normalize_trades` (a row each), the key, `set_timestamp` and `to_topic` write."""
    topic = Topic("trades", key_serializer="string", value_serializer="json")
    written = []
    for record in normalize_trades(batch):
        message = topic.serialize(key=record["pair"], value=record)
        written.append((message.key, message.value, record["timestamp_ms"]))
    return written


@pytest.mark.parametrize("origin", ["ws", "rest"])
def test_a_trade_message_is_written_as_the_row_steps_wrote_it(origin: str) -> None:
    sdf = FakeDataFrame()
    counted: list[int] = []
    batch = [t.to_message(origin) for t in trades(range(7, 10), "ETH/USD")]
    batch[1]["price"] = "65000.123456789012"  # `decimal_strings`: Kraken's digits, as text
    _writer(sdf, counted)(batch, "ETH/USD", 0, None)
    produced = sdf.processing_context.producer.produced
    assert {p["topic"] for p in produced} == {"trades"}
    assert [
        (p["key"].encode(), p["value"], p["timestamp"]) for p in produced
    ] == _as_to_topic_writes(batch)
    assert [orjson.loads(p["value"])["trade_id"] for p in produced] == [7, 8, 9]  # in order
    assert counted == [3]


def test_a_gap_event_goes_to_the_gaps_topic() -> None:
    sdf = FakeDataFrame()
    _writer(sdf)(gap(3, 4), "BTC/USD", 0, None)
    [produced] = sdf.processing_context.producer.produced
    assert produced["topic"] == "gaps" and orjson.loads(produced["value"]) == gap(3, 4)


@pytest.mark.parametrize(
    "value",
    [None, [], message(range(1, 3), pair="SOL/USD")],
    ids=["dropped replay", "end-of-history marker", "a pair not configured"],
)
def test_nothing_else_is_written(value: Any) -> None:
    sdf = FakeDataFrame()
    counted: list[int] = []
    _writer(sdf, counted)(value, "BTC/USD", 0, None)
    assert sdf.processing_context.producer.produced == [] and counted == []


class _Client:
    """librdkafka's client as confluent-kafka offers it; full after `room` records."""

    def __init__(self, room: int = 1_000) -> None:
        self.produced: list[tuple[Any, ...]] = []
        self.polls = 0
        self.room = room

    def produce(self, topic: str, value: bytes, key: str, *, timestamp: int, on_delivery: Any):
        if len(self.produced) >= self.room:
            raise BufferError("Local: Queue full")
        self.produced.append((topic, key.encode(), value, timestamp, on_delivery))

    def poll(self, timeout: float) -> None:
        self.polls += 1


class _QuixProducer:
    """The parts of Quix Streams' `InternalProducer` the writer reaches."""

    def __init__(self, client: _Client) -> None:
        self._producer = SimpleNamespace(_producer=client)  # kafka.Producer -> the client
        self.error: Exception | None = None
        self.produced: list[dict[str, Any]] = []

    def _on_delivery(self, err: Any, msg: Any) -> None: ...

    def _raise_for_error(self) -> None:
        if self.error is not None:
            raise self.error

    def produce(self, **kwargs: Any) -> None:
        self.produced.append(kwargs)


def _fast_writer(quix: _QuixProducer) -> MessageWriter:
    sdf = SimpleNamespace(processing_context=SimpleNamespace(producer=quix))
    return _writer(sdf)  # type: ignore[arg-type]


def test_records_go_to_the_client_with_quix_streams_delivery_callback() -> None:
    """Straight to librdkafka, served once per message; Quix Streams still sees every
    delivery (its callback), so a failed one fails the next checkpoint."""
    client = _Client()
    quix = _QuixProducer(client)
    batch = message(range(1, 4))
    _fast_writer(quix)(batch, "BTC/USD", 0, None)
    assert [(key, value, ts) for _, key, value, ts, _ in client.produced] == _as_to_topic_writes(
        batch
    )
    assert {callback for *_, callback in client.produced} == {quix._on_delivery}
    assert client.polls == 1 and quix.produced == []


def test_a_record_the_full_queue_refuses_goes_through_quix_streams_retries() -> None:
    client = _Client(room=2)
    quix = _QuixProducer(client)
    _fast_writer(quix)(message(range(1, 4)), "BTC/USD", 0, None)
    assert [orjson.loads(v)["trade_id"] for _, _, v, _, _ in client.produced] == [1, 2]
    [retried] = quix.produced
    assert orjson.loads(retried["value"])["trade_id"] == 3 and retried["key"] == "BTC/USD"


def test_a_failed_delivery_stops_the_next_message() -> None:
    client = _Client()
    quix = _QuixProducer(client)
    quix.error = RuntimeError("delivery failed")
    with pytest.raises(RuntimeError, match="delivery failed"):
        _fast_writer(quix)(message(range(1, 4)), "BTC/USD", 0, None)
    assert client.produced == []
