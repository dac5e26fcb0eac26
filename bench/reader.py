"""The bench's own consumer: reads a contender's output topic and stamps each record's arrival."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from bench.records import SENT_HEADER
from sources.app.group_timing import STANDARD

__all__ = ["Arrival", "OutputReader"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One output record as the bench saw it."""

    pair: str
    trade_id: int
    received_ns: int  # time.time_ns() when the consumer handed it over
    sent_ns: int | None  # from the ceiling's header; None for the simulator's contenders


class OutputReader:
    """Reads `topic` from the beginning in a background thread until stopped.

    Records are kept raw with their arrival time and decoded only in `arrivals()`, so
    the reading thread does as little as it can while the contender runs. Watermarks are not
    used (Tansu misreports them): callers wait for a count or a deadline.
    """

    def __init__(
        self,
        broker: str,
        topic: str,
        *,
        keep: bool = True,
        fetch_wait_ms: int = 5,
        on_batch: Callable[[list[Message]], None] | None = None,
        assign: bool = False,
    ) -> None:
        """
        :param keep: keep the records for `arrivals()`; False only counts them (soaks).
        :param assign: read every partition from its start as soon as the topic exists,
            without a consumer group (whose join takes seconds): for timing a start-up.
        :param fetch_wait_ms: how long the broker may hold a fetch. Tansu holds every fetch
            that long, so short is precise; but a consumer asking every 5 ms stops receiving
            on Tansu after a few minutes of steady traffic: long runs ask every 100 ms.
        :param on_batch: called in the reading thread with each batch of good records, so
            that a soak can check them as they come and keep none.
        """
        self.topic = topic
        self.keep = keep
        self._on_batch = on_batch
        self._assign = assign
        self._consumer = Consumer(
            {
                "bootstrap.servers": broker,
                "group.id": f"bench-reader-{uuid.uuid4().hex[:10]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                # a reader that lost its group would read from the start again: never the short
                # session, which a busy broker can let lapse (see group_timing)
                **STANDARD,
                "fetch.wait.max.ms": fetch_wait_ms,
            }
        )
        self._batches: list[tuple[int, list[Message]]] = []
        self._count = 0
        self._assigned = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-reader", daemon=True)
        self.error: str | None = None

    @property
    def count(self) -> int:
        """Records received so far."""
        return self._count

    def start(self, wait: bool = True) -> OutputReader:
        """Subscribe; with `wait`, return once the group has assigned the partitions."""
        if not self._assign:
            self._consumer.subscribe([self.topic], on_assign=lambda *_: self._assigned.set())
        self._thread.start()
        if wait:
            self.wait_assigned()
        return self

    def wait_assigned(self, timeout: float = 60.0) -> None:
        """Wait until the group has assigned the partitions (Tansu takes a few seconds)."""
        if not self._assigned.wait(timeout):
            raise RuntimeError(f"the bench reader got no partitions of {self.topic} in time")

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until `count` records arrived; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self._count < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._consumer.close()

    def first_arrival_after(self, since_ns: int) -> int | None:
        """When the first record received at or after `since_ns` (epoch ns) came, if one did."""
        for received, _ in list(self._batches):
            if received >= since_ns:
                return received
        return None

    def _assign_when_created(self) -> None:
        """Wait for the topic (asking a consumer's metadata, which creates no topic), then
        read all its partitions from their start."""
        while not self._stopping.is_set():
            found = self._consumer.list_topics(self.topic, timeout=1).topics.get(self.topic)
            if found is not None and found.error is None and found.partitions:
                self._consumer.assign(
                    [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in found.partitions]
                )
                self._assigned.set()
                return
            time.sleep(0.01)

    def _run(self) -> None:
        consumer = self._consumer
        if self._assign:
            self._assign_when_created()
        while not self._stopping.is_set():
            messages = consumer.consume(10_000, 0)  # whatever is already here
            if not messages:
                message = consumer.poll(0.05)  # returns as soon as one arrives
                if message is None:
                    continue
                messages = [message]
            received = time.time_ns()
            good = [m for m in messages if not m.error()]
            for message in messages:
                error = message.error()
                if error and error.code() not in _HARMLESS:
                    self.error = str(error)
            if good:
                if self._on_batch is not None:
                    self._on_batch(good)
                if self.keep:
                    self._batches.append((received, good))
                self._count += len(good)

    def arrivals(self) -> list[Arrival]:
        """Every record received so far, decoded."""
        result = []
        for received, messages in list(self._batches):
            for message in messages:
                value = orjson.loads(message.value())
                sent = None
                for name, raw in message.headers() or ():
                    if name == SENT_HEADER:
                        sent = int.from_bytes(raw, "big")
                result.append(Arrival(value["pair"], value["trade_id"], received, sent))
        return result


_HARMLESS = {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART}
