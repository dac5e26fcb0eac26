"""The session timing against a real broker: the embedded Tansu is told apart from any other
broker, the broker takes the timing it is given (a consumer group gets its partitions with it),
and a broker that refuses the connection costs no wait."""

from __future__ import annotations

import os

from confluent_kafka import Consumer
from quixstreams.kafka.configuration import ConnectionConfig

from sources.app import group_timing as timing
from tests.support.kafka import create_topic, free_port, unique


def test_a_group_on_this_broker_gets_its_timing_and_its_partitions(broker: str) -> None:
    external = os.environ.get("KAFKA_BROKER_ADDRESS") or os.environ.get("Quix__Broker__Address")
    given = timing.group_timing(ConnectionConfig(bootstrap_servers=broker))
    if not external:  # the embedded Tansu; an external one is Redpanda or Kafka, or Tansu
        assert given == timing.SHORT

    topic = unique("timing")
    create_topic(broker, topic, partitions=2)
    assigned: list = []
    consumer = Consumer({"bootstrap.servers": broker, "group.id": unique("timing"), **given})
    try:
        consumer.subscribe([topic], on_assign=lambda _, partitions: assigned.extend(partitions))
        for _ in range(200):
            consumer.poll(0.1)
            if assigned:
                break
    finally:
        consumer.close()
    assert sorted(p.partition for p in assigned) == [0, 1]


def test_a_broker_that_refuses_the_connection_gets_the_standard_timing_at_once() -> None:
    address = f"127.0.0.1:{free_port()}"
    assert timing.cluster_id({"bootstrap.servers": address}, timeout=30) is None
    assert timing.group_timing(ConnectionConfig(bootstrap_servers=address)) == timing.STANDARD
    not_an_address = ConnectionConfig(bootstrap_servers="not-an-address")
    assert timing.group_timing(not_an_address) == timing.STANDARD
