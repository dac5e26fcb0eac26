"""The topics the pipelines create, with their settings, and checks of topics that exist.

This is the one place that says how each topic is created: quix.yaml declares the same
settings (`tests/unit/test_descriptors.py` holds them together, and compose.yaml's `topics`
service creates them so). The replication factor is no topic's business: the application's
`TopicPolicy` asks for the `replication` setting, or the broker's or platform's default.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource
from quixstreams.models import TopicConfig

from ..kraken.config import ConfigError

__all__ = [
    "CANDLES_TOPIC",
    "SOURCE_TOPIC",
    "PartitionMismatch",
    "check_partitions",
    "retention_config",
    "topic_config",
    "warn_if_retention_short",
]

logger = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
FOREVER = -1


def retention_config(retention_ms: int) -> dict[str, str]:
    """Explicit retention (-1: forever). Tansu reports only the configs a topic was created
    with, and Quix Streams derives changelog configs from the input topic's retention."""
    return {"retention.ms": str(retention_ms), "retention.bytes": "-1"}


def topic_config(partitions: int, retention_ms: int) -> TopicConfig:
    """A topic's creation settings; its replication factor is the `TopicPolicy`'s to say."""
    return TopicConfig(
        num_partitions=partitions,
        replication_factor=None,
        extra_config=retention_config(retention_ms),
    )


# The source topic is an internal buffer between the Kraken source's process and the
# dataframe, one partition (one writer, in order). Its records carry the time they were
# written (not the trade's), so a backfill of old trades stays as long as live ones: 7 days.
SOURCE_TOPIC = topic_config(1, 7 * DAY_MS)
# The candles: kept forever, like the trades they are made of.
CANDLES_TOPIC = topic_config(3, FOREVER)


def warn_if_retention_short(
    broker_config: dict[str, str], topic: str, retention_ms: int, *, timeout: float = 10.0
) -> int | None:
    """Warn when an existing `topic` keeps records for less than `retention_ms` (-1: forever).

    Quix Streams never changes a topic that exists, so a topic made by an older version (or
    by hand) keeps its own retention. Returns the topic's retention.ms, None if unknown.
    """
    admin = AdminClient({**broker_config, "log_level": 0})
    try:
        if topic not in admin.list_topics(timeout=timeout).topics:
            return None
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=timeout)
    except (KafkaException, ValueError) as exc:
        logger.debug("Could not read the configuration of %s: %s", topic, exc)
        return None
    entry = configs.get("retention.ms")
    if entry is None or entry.value is None:
        return None
    actual = int(entry.value)
    if _shorter(actual, retention_ms):
        logger.warning(
            "Topic %s exists with retention.ms=%d, less than the configured %s: records older "
            "than that will be deleted (change it on the broker, e.g. `rpk topic alter-config "
            "%s --set retention.ms=%d`)",
            topic,
            actual,
            "forever" if retention_ms < 0 else f"{retention_ms} ms",
            topic,
            retention_ms,
        )
    return actual


def _shorter(actual: int, wanted: int) -> bool:
    if wanted < 0:
        return actual >= 0
    return 0 <= actual < wanted


class PartitionMismatch(ConfigError):
    """An existing topic has another partition count than the `partitions` setting."""


def check_partitions(
    broker_config: dict[str, str], topic: str, partitions: int, *, timeout: float = 10.0
) -> int | None:
    """Refuse an existing `topic` whose partition count is not `partitions`.

    A record's partition is its key's hash modulo the count: run against another count, a
    pair's new trades would land on another partition than its old ones, and a reader would
    lose their order. Quix Streams never changes a topic that exists (nor does this app), so
    the mismatch is a configuration error, raised before anything is written.

    Returns the topic's partition count, None when it does not exist yet (it will be created
    with `partitions`) or the broker's metadata could not be read (logged).

    :raises PartitionMismatch: naming `partitions`, the topic and both counts.
    """
    admin = AdminClient({**broker_config, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout).topics.get(topic)
    except (KafkaException, ValueError) as exc:
        logger.warning("Could not read the partition count of %s: %s", topic, exc)
        return None
    if metadata is None or metadata.error is not None or not metadata.partitions:
        return None
    actual = len(metadata.partitions)
    if actual != partitions:
        raise PartitionMismatch(
            f"partitions: topic {topic} exists with {actual} partitions, but partitions is "
            f"{partitions}; its pairs would move to other partitions and lose their order. "
            f"Set partitions={actual}, or write to a new topic"
        )
    return actual
