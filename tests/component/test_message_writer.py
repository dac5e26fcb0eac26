"""`MessageWriter` with Quix Streams' own producer on the real broker: its records are the
ones `to_topic` writes (key, value bytes, timestamp), and Quix Streams sees their delivery."""

from __future__ import annotations

from types import SimpleNamespace

from quixstreams.internal_producer import InternalProducer
from quixstreams.models.topics import Topic

from sources.steps.gaps import GapWriter
from sources.steps.write import MessageWriter, _client_of
from tests.support.core import trades
from tests.support.kafka import at_least, consume, create_topic, unique
from tests.unit.test_message_writer import _as_to_topic_writes


def test_records_on_the_broker_are_what_to_topic_writes(broker: str) -> None:
    topic = unique("writer")
    create_topic(broker, topic, partitions=3)
    producer = InternalProducer(broker_address=broker, extra_config={"linger.ms": 5})
    sdf = SimpleNamespace(processing_context=SimpleNamespace(producer=producer))
    gaps = GapWriter(sdf, Topic(unique("gaps"), value_serializer="json"))  # type: ignore[arg-type]
    output = Topic(topic, key_serializer="string", value_serializer="json")
    writer = MessageWriter(sdf, output, ["BTC/USD", "ETH/USD"], gaps)  # type: ignore[arg-type]
    batches = [
        [t.to_message() for t in trades(range(1, 6), pair)] for pair in ("BTC/USD", "ETH/USD")
    ]
    for batch in batches:
        writer(batch, batch[0]["symbol"], 0, None)
    assert producer.flush(30) == 0
    assert _client_of(producer) is not None  # the fast path: this Quix Streams is built so
    assert {t for t, _ in producer._tp_offsets} == {topic}  # its delivery callback saw them
    records = consume(broker, topic, until=at_least(10), raw=True)
    written = sorted((r.key.encode(), r.value.encode(), r.timestamp_ms) for r in records)
    assert written == sorted(w for batch in batches for w in _as_to_topic_writes(batch))
