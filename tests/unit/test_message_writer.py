"""The last step without transforms (`steps.write.MessageWriter`): one step per message writes
what the row-per-trade steps wrote, record for record."""

from __future__ import annotations

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
