"""The output topic's partition count against the real broker: an existing topic must match."""

from __future__ import annotations

import pytest

from sources.app.topics import PartitionMismatch, check_partitions
from tests.support.kafka import create_topic, free_port, unique


def test_an_existing_topic_with_another_partition_count_is_refused(broker: str) -> None:
    topic = unique("trades")
    create_topic(broker, topic, partitions=2)
    config = {"bootstrap.servers": broker}

    with pytest.raises(PartitionMismatch) as refused:
        check_partitions(config, topic, 3)
    message = str(refused.value)
    assert message.startswith("partitions: ")
    assert topic in message and "2 partitions" in message and "partitions is 3" in message

    assert check_partitions(config, topic, 2) == 2


def test_a_missing_topic_is_accepted(broker: str) -> None:
    assert check_partitions({"bootstrap.servers": broker}, unique("not-there"), 3) is None


def test_an_unreachable_broker_leaves_the_check_to_the_app(caplog) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert check_partitions({"bootstrap.servers": address}, "trades", 3, timeout=1) is None
    assert "Could not read the partition count of trades" in caplog.text
