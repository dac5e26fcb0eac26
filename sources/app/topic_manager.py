"""How the pipelines' Quix Streams applications create topics: one policy for all of them.

Quix Streams 3.28 asks a plain broker for replication factor 1 on every topic it creates
(`TopicManager.default_replication_factor`, and its changelogs copy their input topic's), and
waits a fixed second per created topic. Here every topic an application creates, its
changelogs and the source's included, is asked for the `replication` setting, or the
broker's default (`-1`, KIP-464) or Quix Cloud's (`None`) when it is empty; creation returns
as soon as the broker has the topic; and the topics the application only reads
(`never_create`, e.g. the candles app's trades topic) are waited for, never created with
settings of this app's choosing.

`PipelineApplication` installs the policy where Quix Streams builds its topic managers (the
application's and each source's), on a plain broker and on Quix Cloud alike. Quix Streams
offers no public hook for this: the policy overrides its topic managers' private methods
(`_get_topic_manager`, `_create_topic`, `_get_or_create_broker_topic`), checked with the
Quix Streams versions in `quix_internals.CHECKED_WITH` (`tests/unit/test_topic_policy.py`
pins their shape); a manager of a type it does not know keeps Quix Streams' own policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic
from quixstreams.models.topics import Topic, TopicConfig, TopicManager
from quixstreams.models.topics.exceptions import CreateTopicFailure, TopicNotFoundError
from quixstreams.platforms.quix import QuixTopicManager

from ..kraken.quix_internals import CHECKED_WITH
from .quick_start import QuickStart

__all__ = ["BROKER_DEFAULT", "BrokerTopics", "CloudTopics", "PipelineApplication"]

logger = logging.getLogger(__name__)

BROKER_DEFAULT = -1  # CreateTopics' replication factor for "the broker's default"
VISIBLE_POLL = 0.02  # seconds between two metadata requests while a new topic propagates
WAIT_LOG_EVERY = 30.0  # seconds between two log lines while a topic to read is missing
WAIT_POLL = 1.0  # seconds between two looks for a topic to read


class TopicPolicy:
    """The creation policy, mixed into Quix Streams' topic managers.

    :ivar replication: replication factor of every topic created; None: the default of the
        broker or the platform.
    :ivar never_create: names of topics this application reads but never creates.
    """

    replication: int | None = None
    never_create: frozenset[str] = frozenset()
    platform_default: int | None = BROKER_DEFAULT

    def creation_config(self, config: TopicConfig | None) -> TopicConfig:
        """`config` with this policy's replication factor (its other settings unchanged)."""
        replication = self.platform_default if self.replication is None else self.replication
        if config is None:
            return TopicConfig(num_partitions=None, replication_factor=replication)
        return TopicConfig(
            num_partitions=config.num_partitions,
            replication_factor=replication,
            extra_config=dict(config.extra_config),
        )

    def _get_or_create_broker_topic(self, topic: Topic) -> Topic:
        if topic.name in self.never_create:
            return self._wait_for(topic)
        return super()._get_or_create_broker_topic(topic)  # type: ignore[misc]

    def _wait_for(self, topic: Topic) -> Topic:
        """The topic as the broker has it, once it exists (logged while it does not)."""
        started = time.monotonic()
        next_log = started
        while True:
            try:
                found = self._fetch_topic(topic)  # type: ignore[attr-defined]
            except TopicNotFoundError:
                pass
            else:
                if time.monotonic() - started > WAIT_POLL:
                    logger.info("Topic %s exists now", topic.name)
                return found
            if time.monotonic() >= next_log:
                logger.warning(
                    "Waiting for topic %s: this app reads it but never creates it (the trades "
                    "pipeline, `quix pipeline up` or compose's `topics` service creates it "
                    "with the settings of quix.yaml)",
                    topic.name,
                )
                next_log = time.monotonic() + WAIT_LOG_EVERY
            time.sleep(WAIT_POLL)


class BrokerTopics(TopicPolicy, TopicManager):
    """Topics on a plain Kafka API broker (Redpanda, Kafka, Tansu)."""

    def _create_topic(self, topic: Topic, timeout: float, create_timeout: float) -> None:
        config = self.creation_config(topic.create_config)
        logger.info(
            "Creating topic %s: %s partitions, replication %s, %s",
            topic.name,
            config.num_partitions or "the broker's default",
            "the broker's default"
            if config.replication_factor == BROKER_DEFAULT
            else config.replication_factor,
            config.extra_config,
        )
        request = NewTopic(
            topic.name,
            num_partitions=config.num_partitions or -1,
            replication_factor=config.replication_factor,
            config=config.extra_config,
        )
        admin = self._admin.admin_client
        future = admin.create_topics(
            [request], request_timeout=timeout, operation_timeout=create_timeout
        )[topic.name]
        try:
            future.result(timeout=timeout + create_timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # else: made by another instance
                message = f"Failed to create topic {topic.name}: {error.str()}"
                raise CreateTopicFailure(message) from None
        self._wait_until_visible(topic.name, create_timeout)

    def _wait_until_visible(self, name: str, timeout: float) -> None:
        """Return once the metadata shows every partition of `name` with a leader: a broker
        acknowledges a creation before the whole cluster knows of it."""
        deadline = time.monotonic() + timeout
        admin = self._admin.admin_client
        while True:
            metadata = admin.list_topics(topic=name, timeout=self._timeout).topics.get(name)
            if (
                metadata is not None
                and metadata.error is None
                and metadata.partitions
                and all(p.leader >= 0 for p in metadata.partitions.values())
            ):
                return
            if time.monotonic() > deadline:
                raise CreateTopicFailure(f"Topic {name} did not appear within {timeout:g} s")
            time.sleep(VISIBLE_POLL)


class CloudTopics(TopicPolicy, QuixTopicManager):
    """Topics on Quix Cloud, created through its API (`None`: the platform's default)."""

    platform_default = None

    def _create_topic(self, topic: Topic, timeout: float, create_timeout: float) -> None:
        topic.create_config = self.creation_config(topic.create_config)
        super()._create_topic(topic, timeout, create_timeout)


_WITH_POLICY: dict[type, type] = {TopicManager: BrokerTopics, QuixTopicManager: CloudTopics}


class PipelineApplication(QuickStart):
    """A Quix Streams `Application` whose topic managers follow one `TopicPolicy`, and which
    starts quickly (`quick_start.QuickStart`).

    :param replication: replication factor of every topic it creates; None: the default of
        the broker (or of Quix Cloud).
    :param never_create: topics it reads but must never create (waited for instead).
    :param kwargs: the `Application`'s.
    """

    def __init__(
        self, *, replication: int | None = None, never_create: Iterable[str] = (), **kwargs
    ) -> None:
        self.replication = replication
        self.never_create = frozenset(never_create)
        super().__init__(**kwargs)

    def _get_topic_manager(self) -> TopicManager:
        # Quix Streams builds one manager for the application and one per source here (the
        # source's travels to its process): each becomes its policy-following subclass.
        manager = super()._get_topic_manager()
        policy = _WITH_POLICY.get(type(manager))
        if policy is None:  # another Quix Streams: its own policy, said once
            logger.warning(
                "Topic manager %s unknown (checked with quixstreams%s): topics are created "
                "with Quix Streams' own settings",
                type(manager).__name__,
                CHECKED_WITH,
            )
            return manager
        manager.__class__ = policy
        manager.replication = self.replication
        manager.never_create = self.never_create
        return manager
