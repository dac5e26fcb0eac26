"""Reading the topics: the trades (fast, in batches), the gap events, one pair's records again.

Records are read with `isolation.level=read_committed` by a consumer that joins no group and
commits nothing (`assign`). Where a read ends: each partition is read until the consumer
reports its end (from the Fetch answers' high watermark) or, with `--until`, until every pair
on it has a record past that time; and the read as a whole ends when no record has arrived for
`idle_timeout` seconds, whatever the partitions say. The brokers' ListOffsets answers are never
used to know where a partition ends: Tansu's are short by the last record batch (see
`sources/steps/last_written.py`); they only size the progress bar.

`--since` starts each partition at the first record of that time or later (`offsets_for_times`)
when the broker answers that question; Tansu answers 0 for any time, which the reader detects
(a time after every record must give the end, -1) and then reads from the beginning, the
accounting skipping what is earlier.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from .accounting import TopicAudit
from .explain import GapEvents

__all__ = ["BrokerError", "ReadStats", "TopicReader", "broker_config"]

logger = logging.getLogger(__name__)
# librdkafka's own lines (a refused connection, again and again): shown with loglevel DEBUG
# only; what they mean is said once, by the audit, as an error that names the broker.
_LIBRDKAFKA = logging.getLogger("audit.librdkafka")

BATCH = 10_000  # records per consume() call
POLL = 0.2  # seconds one consume() call waits at most
METADATA_TIMEOUT = 10.0
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: no record is that late

CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
    "allow.auto.create.topics": False,
    "isolation.level": "read_committed",
    "fetch.wait.max.ms": 10,  # Tansu holds each fetch this long, even with records to give
    # librdkafka's prefetch queue (100,000 records a partition, 64 MB, by default) is what
    # fills the memory of a reader that is slower than the broker, not the audit's state:
    # a smaller one keeps the reads as fast (see the bench) and the memory low and flat.
    "queued.min.messages": 20_000,
    "queued.max.messages.kbytes": 8192,
    "fetch.queue.backoff.ms": 10,  # when that queue is full, fetch again soon (default 1 s)
    "log.connection.close": False,
}


class BrokerError(RuntimeError):
    """The broker cannot be reached, or the topic to audit does not exist."""


def broker_config(address: str) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The librdkafka connection settings and the topic naming: `address`, or Quix Cloud's
    broker and workspace topic names when Quix Cloud set its SDK token.

    :raises BrokerError: when Quix Cloud's API does not answer.
    """
    if not os.environ.get("Quix__Sdk__Token"):
        return {"bootstrap.servers": address}, lambda name: name
    from quixstreams.models import Topic  # Quix Cloud only: its portal API knows the broker
    from quixstreams.platforms.quix import QuixKafkaConfigsBuilder
    from quixstreams.platforms.quix.env import QUIX_ENVIRONMENT

    try:
        builder = QuixKafkaConfigsBuilder.from_credentials(
            quix_sdk_token=QUIX_ENVIRONMENT.sdk_token,
            quix_portal_api=QUIX_ENVIRONMENT.portal_api,
        )
        config = {
            **builder.librdkafka_connection_config.as_librdkafka_dict(),
            **builder.librdkafka_extra_config,
        }
    except Exception as exc:  # the portal API's own errors, or the network's
        raise BrokerError(f"Quix Cloud's broker settings: {exc}") from exc

    def topic_id(name: str) -> str:
        """The workspace's Kafka name of topic `name` (its `id` in Quix Cloud's API)."""
        try:
            return builder.get_topic(Topic(name))["id"]
        except Exception as exc:  # the portal API's own errors: no such topic, no answer
            raise BrokerError(f"topic {name!r} in Quix Cloud: {exc}") from exc

    return config, topic_id


@dataclass
class ReadStats:
    """How a read went.

    :param first_record_at: monotonic time of the first record; `last_record_at` of the last
        (the read rate is measured between them, as for any consumer).
    :param ended: why the read ended: `end of partitions`, `until`, `idle timeout`.
    :param start: `offsets_for_times`, `beginning` or `beginning (the broker cannot look up
        times)`.
    """

    records: int = 0
    first_record_at: float | None = None
    last_record_at: float | None = None
    ended: str = ""
    start: str = "beginning"
    partitions: int = 0

    @property
    def seconds(self) -> float:
        if self.first_record_at is None or self.last_record_at is None:
            return 0.0
        return self.last_record_at - self.first_record_at

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class TopicReader:
    """Reads topics of one broker.

    :param config: librdkafka connection settings (`broker_config`).
    :param idle_timeout: seconds without a new record after which a read ends.
    """

    def __init__(self, config: dict[str, Any], *, idle_timeout: float = 3.0) -> None:
        self.config = config
        self.idle_timeout = idle_timeout

    def _consumer(self) -> Consumer:
        group = f"kraken-audit-{uuid.uuid4().hex[:10]}"  # never joined, never committed
        config = {**self.config, **CONSUMER_CONFIG, "group.id": group}
        return Consumer(config, logger=_LIBRDKAFKA)

    def partitions(self, topic: str) -> list[int] | None:
        """The topic's partitions; None when it does not exist.

        :raises BrokerError: when the broker does not answer.
        """
        consumer = self._consumer()
        try:
            metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT)
        except KafkaException as exc:
            error = exc.args[0]
            detail = error.str() if isinstance(error, KafkaError) else str(error)
            raise BrokerError(f"no answer within {METADATA_TIMEOUT:g} s ({detail})") from None
        finally:
            consumer.close()
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            if found is not None and found.error is not None:
                code = found.error.code()
                if code not in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                    raise BrokerError(f"topic {topic}: {found.error.str()}")
            return None
        return sorted(found.partitions)

    def read_trades(
        self,
        topic: str,
        partitions: list[int],
        audit: TopicAudit,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> ReadStats:
        """Feed every record of `topic` (from `--since`, to the end or `--until`) to `audit`.

        :param progress: called now and then with (records read, records expected or None).
        """
        stats = ReadStats(partitions=len(partitions))
        consumer = self._consumer()
        collecting = gc.isenabled()
        gc.disable()  # the read makes no reference cycles; the collector would cost a quarter
        try:
            starts = self._starts(consumer, topic, partitions, audit.since_ms, stats)
            expected = self._expected(consumer, topic, starts)
            consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
            pending = set(partitions)
            last_seen = time.monotonic()
            reported = 0.0
            while pending:
                messages = consumer.consume(BATCH, POLL)
                now = time.monotonic()
                if not messages:
                    if now - last_seen >= self.idle_timeout:
                        stats.ended = "idle timeout"
                        break
                    continue
                last_seen = now
                errors = audit.add_batch(messages)
                read = len(messages) - len(errors)
                if read:
                    stats.records += read
                    stats.first_record_at = stats.first_record_at or now
                    stats.last_record_at = time.monotonic()
                ended = {self._handle_error(message) for message in errors} - {None}
                if ended & pending:  # read as far as it was written: later records are not
                    consumer.pause([TopicPartition(topic, p) for p in ended & pending])
                    pending -= ended
                finished = pending & audit.done_partitions
                if finished:
                    consumer.pause([TopicPartition(topic, p) for p in finished])
                    pending -= finished
                    stats.ended = "until"
                if progress is not None and now - reported >= 0.2:
                    progress(stats.records, expected)
                    reported = now
            else:
                stats.ended = stats.ended or "end of partitions"
        finally:
            if collecting:
                gc.enable()
            consumer.close()
        if progress is not None:
            progress(stats.records, expected)
        return stats

    def read_gaps(self, topic: str, partitions: list[int], events: GapEvents) -> None:
        """Every gap event of `topic` (all of them: they are few) into `events`."""
        for message in self._messages(topic, {p: OFFSET_BEGINNING for p in partitions}):
            try:
                value = orjson.loads(message.value())
            except (orjson.JSONDecodeError, TypeError):
                value = None
            events.add(value, message.partition(), message.offset())

    def records(self, topic: str, partition: int, first: int, last: int) -> Iterator[dict]:
        """The records of one partition from offset `first` to `last` (inclusive), parsed
        (those that are not JSON objects are left out: the accounting reported them)."""
        for message in self._messages(topic, {partition: first}, stop_after=last):
            try:
                value = orjson.loads(message.value())
            except (orjson.JSONDecodeError, TypeError):
                continue
            if type(value) is dict:
                yield value

    def _messages(
        self, topic: str, starts: dict[int, int], stop_after: int | None = None
    ) -> Iterator[Message]:
        """The records from `starts` to the end of each partition (or offset `stop_after`)."""
        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
            pending = set(starts)
            last_seen = time.monotonic()
            while pending:
                messages = consumer.consume(BATCH, POLL)
                if not messages:
                    if time.monotonic() - last_seen >= self.idle_timeout:
                        return
                    continue
                last_seen = time.monotonic()
                for message in messages:
                    if message.error() is not None:
                        pending.discard(self._handle_error(message))
                        continue
                    if stop_after is not None and message.offset() > stop_after:
                        pending.discard(message.partition())
                        continue
                    yield message
                    if stop_after is not None and message.offset() >= stop_after:
                        pending.discard(message.partition())
        finally:
            consumer.close()

    def _handle_error(self, message: Message) -> int | None:
        """The partition that has ended (end of partition), or None for a passing error.

        :raises BrokerError: for an error that stops the read.
        """
        error = message.error()
        if error.code() == KafkaError._PARTITION_EOF:
            return message.partition()
        if error.fatal() or error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise BrokerError(f"reading {message.topic()}: {error.str()}")
        logger.warning("Reading %s: %s", message.topic(), error.str())
        return None

    def _starts(
        self,
        consumer: Consumer,
        topic: str,
        partitions: list[int],
        since_ms: int | None,
        stats: ReadStats,
    ) -> dict[int, int]:
        """Each partition's first offset to read: from `since_ms` when the broker can say."""
        beginning = dict.fromkeys(partitions, OFFSET_BEGINNING)
        if since_ms is None:
            return beginning
        try:
            future = consumer.offsets_for_times(
                [TopicPartition(topic, p, FAR_FUTURE_MS) for p in partitions], METADATA_TIMEOUT
            )
            if any(tp.offset >= 0 for tp in future):  # a record after 2100: a broker that
                stats.start = "beginning (the broker cannot look up times)"  # answers 0
                return beginning
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, since_ms) for p in partitions], METADATA_TIMEOUT
            )
        except KafkaException as exc:
            logger.info("offsets_for_times failed (%s): reading from the beginning", exc)
            stats.start = "beginning (the broker cannot look up times)"
            return beginning
        stats.start = "offsets_for_times"
        # -1: no record that late in the partition: nothing to read there but its end
        return {tp.partition: tp.offset if tp.offset >= 0 else -1 for tp in found}

    def _expected(self, consumer: Consumer, topic: str, starts: dict[int, int]) -> int | None:
        """About how many records the read will see (for the progress bar only)."""
        total = 0
        try:
            for partition, start in starts.items():
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=METADATA_TIMEOUT
                )
                if start != -1:  # -1: from the end, nothing to read
                    total += max(0, high - (low if start < 0 else start))
        except KafkaException:
            return None
        return total or None
