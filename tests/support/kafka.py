"""Test helpers for the real broker: free ports, topics, and a plain consumer."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from sources.app.group_timing import STANDARD

RETENTION = {"retention.ms": "604800000", "retention.bytes": "-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(broker: str, name: str, partitions: int = 1) -> None:
    """Create a topic with explicit retention (Tansu reports only configs set at creation)."""
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=RETENTION)])
    futures[name].result(timeout=30)


@dataclass(frozen=True)
class Record:
    key: str | None
    value: dict
    timestamp_ms: int
    partition: int
    offset: int


def consume(
    broker: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    timeout: float = 60.0,
    isolation: str = "read_uncommitted",
    raw: bool = False,
) -> list[Record]:
    """Read `topic` from the beginning until `until(records)` is true or `timeout` passes.

    Watermark offsets are not trusted (Tansu answers them wrongly): a deadline bounds the read.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": unique("test-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # a reader that lost its group would read from the start again: never the short
            # session, which a busy broker can let lapse (see group_timing)
            **STANDARD,
            "isolation.level": isolation,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                if message.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                raise RuntimeError(message.error())
            key = message.key()
            records.append(
                Record(
                    key=key.decode() if key is not None else None,
                    value=message.value().decode() if raw else orjson.loads(message.value()),
                    timestamp_ms=message.timestamp()[1],
                    partition=message.partition(),
                    offset=message.offset(),
                )
            )
    finally:
        consumer.close()
    return records


def at_least(n: int) -> Callable[[list[Record]], bool]:
    return lambda records: len(records) >= n


def filters_aborted_transactions(broker: str) -> bool:
    """Whether a read_committed consumer of `broker` skips aborted records, as Kafka does.

    Tansu returns them (checked here rather than assumed, so Redpanda runs the strict tests).
    """
    from confluent_kafka import Producer

    topic = unique("probe-txn")
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker, "transactional.id": unique("probe")})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.flush(10)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(30)
    records = consume(
        broker,
        topic,
        until=lambda r: any(x.value == "committed" for x in r),
        timeout=30,
        isolation="read_committed",
        raw=True,
    )
    return all(r.value != "aborted" for r in records)


RECORDER = Path(__file__).resolve().parent / "record_topics"


def recording_env(path: Path) -> dict[str, str]:
    """Variables that make a Python process record its CreateTopics requests to `path`
    (see `record_topics/sitecustomize.py`), one JSON object per line."""
    pythonpath = os.pathsep.join(filter(None, [str(RECORDER), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": pythonpath, "RECORD_CREATE_TOPICS": str(path)}


def recorded_creations(path: Path) -> list[dict]:
    """The CreateTopics requests recorded to `path` (`recording_env`)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@dataclass(frozen=True)
class TopicOnBroker:
    """What the broker reports of a topic: replicas of each partition, and its configs."""

    replicas: tuple[int, ...]
    configs: dict[str, str]


def topics_on_broker(broker: str, names: list[str] | None = None) -> dict[str, TopicOnBroker]:
    """Each topic (all, or `names` that exist) with its replica counts and configs."""
    admin = AdminClient({"bootstrap.servers": broker})
    metadata = admin.list_topics(timeout=10).topics
    wanted = [n for n in (names if names is not None else metadata) if n in metadata]
    found = {}
    for name in wanted:
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        partitions = metadata[name].partitions.values()
        found[name] = TopicOnBroker(
            replicas=tuple(len(p.replicas) for p in partitions),
            configs={key: entry.value for key, entry in configs.items()},
        )
    return found
