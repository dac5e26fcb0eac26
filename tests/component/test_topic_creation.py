"""Topic creation by the pipelines' applications against the real broker: a missing topic is
created once, with the policy's replication factor; an existing one is not asked for again;
a topic the app must never create is waited for and keeps its creator's settings.

The CreateTopics requests are read where every creation goes through, the Kafka admin
client's `create_topics`, and passed on to the broker unchanged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from sources.app.topic_manager import BROKER_DEFAULT, PipelineApplication
from sources.app.topics import topic_config
from tests.support.kafka import create_topic, topics_on_broker, unique


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """Every NewTopic asked for in this process while the test runs."""
    asked: list = []
    create_topics = AdminClient.create_topics

    def recording(self, new_topics, *args, **kwargs):
        asked.extend(new_topics)
        return create_topics(self, new_topics, *args, **kwargs)

    monkeypatch.setattr(AdminClient, "create_topics", recording)
    yield asked


def application(broker: str, **policy) -> PipelineApplication:
    return PipelineApplication(broker_address=broker, consumer_group=unique("g"), **policy)


def test_a_missing_topic_is_created_once_an_existing_one_never_again(
    broker: str, requests: list
) -> None:
    name = unique("created")
    config = topic_config(2, -1)
    first = application(broker).topic(name, config=config)
    assert [(r.topic, r.num_partitions, r.replication_factor) for r in requests] == [
        (name, 2, BROKER_DEFAULT)
    ]
    assert first.broker_config.num_partitions == 2  # usable at once: the broker has it
    again = application(broker).topic(name, config=config)  # the next start
    assert len(requests) == 1
    assert again.broker_config.extra_config["retention.ms"] == "-1"


def test_the_replication_setting_reaches_the_broker(broker: str, requests: list) -> None:
    name = unique("replicated")
    application(broker, replication=3).topic(name, config=topic_config(2, -1))
    assert [r.replication_factor for r in requests] == [3]
    assert topics_on_broker(broker, [name])[name].replicas == (3, 3)


def test_a_topic_never_to_create_is_waited_for_and_keeps_its_creators_settings(
    broker: str, requests: list, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("theirs")
    app = application(broker, never_create=[name])
    found: list = []
    reader = threading.Thread(target=lambda: found.append(app.topic(name)), daemon=True)
    with caplog.at_level("WARNING"):
        reader.start()
        deadline = time.monotonic() + 10
        while f"Waiting for topic {name}" not in caplog.text:
            assert time.monotonic() < deadline, "the app did not say it waits"
            time.sleep(0.05)
    assert name not in topics_on_broker(broker, [name])  # it waited, created nothing
    create_topic(broker, name, partitions=3)  # its owner creates it (7 days' retention)
    reader.join(timeout=15)
    assert found, "the app still waits for a topic that exists"
    assert found[0].broker_config.num_partitions == 3
    assert found[0].broker_config.extra_config["retention.ms"] == "604800000"
    assert [r.topic for r in requests] == [name]  # only the owner's request
