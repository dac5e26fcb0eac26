"""The last trade_id of each pair in the output topic: what the dedupe step is seeded with
(and, read from the source topic's tail, what an earlier run's source wrote there).

After a crash in at-least-once mode the dataframe writes again what it wrote since its last
commit. The output topic is the truth: before the Application runs, `last_trade_ids` finds
each pair's last trade_id in it, and the dedupe step drops anything not newer.

Method, per partition (a pair lives in one partition, in trade_id order; a partition holds
several pairs):

1. Ask its first and end offsets (ListOffsets, one request for all partitions each).
2. Read from `end - tail` until the consumer reports the end of the partition
   (`enable.partition.eof`), keeping the highest trade_id of each pair. If the first fetch
   response's high watermark shows the window to be over twice `tail` long, seek to
   `high watermark - tail` first.
3. If a requested pair was not seen, read the `tail` records before the window, then twice
   as many, and so on, until every requested pair is found, the partition's start is
   reached, or `max_records` were read in the partition.

Why the end offset is only a hint: Tansu (the in-memory broker of the tests and `make run`)
answers ListOffsets "latest" with the base offset of the partition's last record batch plus
one, not the offset after its last record. After lz4 batches of 1, 10, 100, 3, 1000 and 1
records (true ends 1, 11, 111, 114, 1114, 1115) it answers 1, 2, 12, 112, 115, 1115 -- so
do `get_watermark_offsets` and `offsets_for_times(-1)`, both ListOffsets too, and the
AdminClient's `list_offsets(OffsetSpec.latest())`; `OffsetSpec.max_timestamp()` is not
supported (-1001) and a timestamp after the last record gives 0, not the end. The first
offset (-2) is right (0). Its Fetch responses carry the true high watermark (1115), so the
end of partition the consumer reports, and the watermark cached from a fetch, are right.
Kafka and Redpanda answer the true end, as the protocol says. Reading from the ListOffsets answer
minus `tail` to the reported end of partition is therefore right on both; step 2 keeps the
read near `tail` records when the answer is short (Tansu: by its last batch, up to
`batch.num.messages` records). A broker whose answers were wrong otherwise would make the
read hit `max_records`: the partition is then reported as undetermined, never guessed.

Bounds: `timeout` for the whole call (metadata, offsets, reading), `max_records` records
per partition. A pair whose last trade_id could not be determined (the partition failed or
timed out, or the pair was not found within `max_records`) is logged and listed in
`LastTradeIds.unknown`; the caller seeds nothing for it. A pair absent from a topic read
to its start was never written: it is neither in the result nor unknown.

Records are read with `isolation.level=read_committed` (as in at-least-once mode there are
no transactions, this changes nothing there). Tansu returns aborted records even then, so
seeding from it in exactly-once mode could drop trades that are written again: seed in
at-least-once mode only (in exactly-once mode the state commits with the output anyway).
Metadata is asked by a consumer, which never creates a missing topic (Tansu creates one
for an AdminClient's metadata request, with 4 partitions).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

__all__ = ["LastTradeIds", "last_trade_ids"]

logger = logging.getLogger(__name__)

CONSUME_BATCH = 1000  # messages per consume() call
POLL_INTERVAL = 0.01  # seconds one consume() call waits at most (it waits for a full batch)
RETRY_PAUSE = 0.2  # seconds between two metadata or offsets requests that failed

# Settings added to the caller's (which give the address and the credentials).
CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "error",  # an offset gone meanwhile: fail, do not read from the start
    "allow.auto.create.topics": False,
    "isolation.level": "read_committed",
    # Tansu holds every fetch this long even when it has records; Kafka answers at once.
    "fetch.wait.max.ms": 10,
    "log.connection.close": False,  # Tansu closes idle connections: not worth a log line
}


class LastTradeIds(dict[str, int]):
    """pair -> its last trade_id written, with what could not be determined.

    :ivar unknown: requested pairs whose last trade_id could not be determined (seed nothing).
    :ivar times: pair -> `timestamp_ms` of that last record (0 when it had none).
    :ivar complete: False when a partition could not be read: with `pairs=None`, pairs of
        that partition may be missing without being named.
    """

    def __init__(
        self,
        found: Mapping[str, int] | None = None,
        *,
        unknown: Iterable[str] = (),
        complete: bool = True,
        times: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(found or {})
        self.unknown = frozenset(unknown)
        self.complete = complete
        self.times = dict(times or {})  # pair -> the time of that record (epoch ms; 0: none)

    def positions(self) -> dict[str, tuple[int, int]]:
        """pair -> (last trade_id, its epoch ms), for pairs whose record had a time."""
        return {pair: (tid, self.times[pair]) for pair, tid in self.items() if self.times.get(pair)}

    def __repr__(self) -> str:
        return (
            f"LastTradeIds({dict(self)!r}, unknown={sorted(self.unknown)!r}, "
            f"complete={self.complete})"
        )


@dataclass
class _Partition:
    """One partition's reading: the windows go back from its end."""

    number: int
    low: int = 0  # its first offset
    start: int = 0  # the first offset of the current window
    end: int | None = None  # the current window's end (exclusive); None: the partition's end
    read: int = 0  # records read in all its windows
    # pair -> (trade_id, timestamp_ms) of its last record: in complete windows, in this one
    last: dict[str, tuple[int, int]] = field(default_factory=dict)
    window: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: str | None = None  # why it could not be read
    listed: int = 0  # its end offset as ListOffsets answered
    checked: bool = False  # that end was checked against the first fetch's high watermark

    @property
    def exhausted(self) -> bool:
        return self.start <= self.low


def last_trade_ids(
    broker_config: Mapping[str, Any],
    topic: str,
    pairs: Iterable[str] | None = None,
    *,
    tail: int = 5000,
    timeout: float = 30.0,
    max_records: int | None = None,
    id_field: str = "trade_id",
) -> LastTradeIds:
    """The last trade_id of each pair written to `topic` (records `{"pair", "trade_id", ...}`).

    :param broker_config: librdkafka settings, at least `bootstrap.servers` (with SASL ones
        for Quix Cloud: `app.config.broker_address.as_librdkafka_dict()`).
    :param pairs: the pairs to find (others are ignored); None: the pairs of the tail.
        Only requested pairs make the reading go back beyond the tail.
    :param tail: records read at the end of each partition first.
    :param timeout: seconds for the whole call.
    :param max_records: records read per partition at most (default: 20 x `tail`).
    :param id_field: the record's field that holds the trade_id (`last_trade_id` for gap events).
    :return: pair -> last trade_id; a missing topic gives an empty result. Undetermined
        pairs are logged and listed in `.unknown`.
    """
    if tail < 1:
        raise ValueError(f"tail must be at least 1, not {tail}")
    if isinstance(pairs, str):
        raise TypeError("pairs must be a collection of pairs, not one string")
    budget = max(max_records if max_records is not None else 20 * tail, tail)
    wanted = frozenset(pairs) if pairs is not None else None
    if wanted is not None and not wanted:
        return LastTradeIds()
    started = time.monotonic()
    deadline = started + timeout
    consumer = Consumer(
        {
            "logger": logger,  # librdkafka's own lines (e.g. connection refused), unless given
            **broker_config,
            "group.id": f"last-written-{uuid.uuid4().hex}",
            **CONSUMER_CONFIG,
        }
    )
    try:
        partitions = _partitions(consumer, topic, deadline)
        if partitions is None:
            return _result(topic, [], wanted, complete=False, started=started)
        if not partitions:
            logger.info("Topic %s does not exist: no trade written yet", topic)
            return LastTradeIds()
        _bounds(consumer, topic, partitions, tail, deadline)
        reading = _Reading(consumer, topic, wanted, tail, budget, deadline, id_field)
        _read_back(reading, partitions)
    finally:
        consumer.close()
    return _result(topic, partitions, wanted, complete=True, started=started)


def _partitions(consumer: Consumer, topic: str, deadline: float) -> list[_Partition] | None:
    """The topic's partitions; [] when it does not exist; None when the broker did not say."""
    while True:
        error: object
        try:
            metadata = consumer.list_topics(topic, timeout=_remaining(deadline))
        except KafkaException as exc:
            error = _text(exc)  # e.g. no connection yet: librdkafka says "transport failure"
        else:
            found = metadata.topics.get(topic)
            if found is None or (
                found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            ):
                return []
            if found.error is None and found.partitions:
                return [_Partition(number) for number in sorted(found.partitions)]
            error = found.error or "no partitions"
        if time.monotonic() + RETRY_PAUSE >= deadline:
            logger.warning("Could not read the metadata of topic %s: %s", topic, error)
            return None
        time.sleep(RETRY_PAUSE)


def _bounds(
    consumer: Consumer, topic: str, partitions: list[_Partition], tail: int, deadline: float
) -> None:
    """Set each partition's first window: from its end offset minus `tail` to its end.

    ListOffsets with the special timestamps -2 (earliest) and -1 (latest), one request for
    all partitions each; on Tansu "latest" is short of the end by the last batch less one.
    """
    low = _list_offsets(consumer, topic, partitions, OFFSET_BEGINNING, deadline)
    high = _list_offsets(consumer, topic, partitions, OFFSET_END, deadline)
    for p in partitions:
        if p.failed is None:
            p.low, p.listed = low[p.number], high[p.number]
            p.start = max(p.low, p.listed - tail)
            logger.debug(
                "%s[%d]: offsets %d..%d listed, reading from %d",
                topic,
                p.number,
                p.low,
                p.listed,
                p.start,
            )


def _list_offsets(
    consumer: Consumer, topic: str, partitions: list[_Partition], spec: int, deadline: float
) -> dict[int, int]:
    """Partition -> its offset for `spec`, retried while time is left; failures are marked."""
    asked = [p for p in partitions if p.failed is None]
    offsets: dict[int, int] = {}
    while asked:
        errors: dict[int, str] = {}
        try:
            answers = consumer.offsets_for_times(
                [TopicPartition(topic, p.number, spec) for p in asked],
                timeout=_remaining(deadline),
            )
        except KafkaException as exc:
            errors = {p.number: _text(exc) for p in asked}
        else:
            for answer in answers:
                if answer.error is None and answer.offset >= 0:
                    offsets[answer.partition] = answer.offset
                else:
                    errors[answer.partition] = str(answer.error or answer.offset)
        asked = [p for p in asked if p.number not in offsets]
        if asked and time.monotonic() + RETRY_PAUSE >= deadline:
            for p in asked:
                p.failed = f"its offsets could not be listed: {errors.get(p.number, '?')}"
            break
        if asked:
            time.sleep(RETRY_PAUSE)
    return offsets


@dataclass(frozen=True)
class _Reading:
    """What one call reads, and within which bounds."""

    consumer: Consumer
    topic: str
    wanted: frozenset[str] | None
    tail: int
    budget: int
    deadline: float
    id_field: str


def _read_back(reading: _Reading, partitions: list[_Partition]) -> None:
    """Read each partition's tail, then windows further back (each twice as long) until every
    wanted pair is found, the partitions' starts are reached, or the budget is spent."""
    step = reading.tail
    readable = [p for p in partitions if p.failed is None]
    while readable:
        _read(reading, readable)
        wanted = reading.wanted
        if wanted is None or wanted <= {pair for p in partitions for pair in p.last}:
            return
        budget = reading.budget
        readable = [
            p for p in partitions if p.failed is None and not p.exhausted and p.read < budget
        ]
        for p in readable:
            p.end = p.start
            p.start = max(p.low, p.start - min(step, budget - p.read))
        step *= 2


def _read(reading: _Reading, partitions: list[_Partition]) -> None:
    """Read each partition's current window, then fold what it found into `last`."""
    consumer, topic = reading.consumer, reading.topic
    active = {p.number: p for p in partitions}
    assignment = [TopicPartition(topic, p.number, p.start) for p in partitions]
    consumer.assign(assignment)
    consumer.resume(assignment)  # a partition paused in the previous round stays paused
    while active:
        remaining = reading.deadline - time.monotonic()
        if remaining <= 0:
            for p in list(active.values()):
                _stop(
                    reading,
                    active,
                    p,
                    f"not read to the end of its window in time (offset {p.start}..)",
                )
            break
        try:
            messages = consumer.consume(CONSUME_BATCH, timeout=min(remaining, POLL_INTERVAL))
        except KafkaException as exc:
            for p in list(active.values()):
                _stop(reading, active, p, f"the consumer failed: {_text(exc)}")
            break
        _take_batch(reading, active, messages)
    consumer.unassign()


def _take_batch(reading: _Reading, active: dict[int, _Partition], messages: list[Message]) -> None:
    """One `consume` batch: records kept, windows closed at their end, failures noted."""
    topic = reading.topic
    moved: set[int] = set()  # partitions sought elsewhere: the rest of this list is stale
    for message in messages:
        error = message.error()
        p = active.get(message.partition()) if message.topic() == topic else None
        if p is None:  # a closed window's leftovers, or the consumer's own errors
            if error is not None and error.fatal():
                for q in list(active.values()):
                    _stop(reading, active, q, f"the consumer failed: {error}")
            elif error is not None and error.code() != KafkaError._PARTITION_EOF:
                logger.debug("Reading %s: %s", topic, error)
            continue
        if p.number in moved:
            continue
        if error is not None:
            eof = error.code() == KafkaError._PARTITION_EOF
            _stop(reading, active, p, None if eof else f"reading it failed: {error}")
            continue
        if not p.checked:
            p.checked = True
            if _skip_to_tail(reading.consumer, topic, p, reading.tail, reading.budget):
                moved.add(p.number)
                continue
        if p.end is not None and message.offset() >= p.end:
            _stop(reading, active, p, None)
            continue
        p.read += 1
        if p.read > reading.budget:
            _stop(
                reading,
                active,
                p,
                f"{reading.budget} records read without reaching the end of the partition",
            )
            continue
        _take(message, p.window, reading.wanted, reading.id_field)


def _stop(
    reading: _Reading, active: dict[int, _Partition], p: _Partition, failed: str | None
) -> None:
    """Close `p`'s window: keep what it found (None: read to its end), or fail it."""
    if failed is None:
        for pair, last in p.window.items():
            if pair not in p.last or last > p.last[pair]:
                p.last[pair] = last
    else:
        p.failed = failed
    p.window.clear()
    del active[p.number]
    reading.consumer.pause([TopicPartition(reading.topic, p.number)])


def _skip_to_tail(consumer: Consumer, topic: str, p: _Partition, tail: int, budget: int) -> bool:
    """Seek to `tail` records before the true end if the first window proves far too long.

    The high watermark of the first fetch response is the true end, even on Tansu (whose
    ListOffsets answer is short by its last batch): when the window would read more than
    twice the tail (or the budget), start it again at `end - tail`. True when it did.
    """
    if p.end is not None:
        return False
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p.number), cached=True)
    except KafkaException:
        return False
    start = max(p.low, high - tail)
    if high < 0 or high - p.start <= min(2 * tail, budget) or start <= p.start:
        return False
    try:
        consumer.seek(TopicPartition(topic, p.number, start))
    except KafkaException as exc:
        logger.debug("%s[%d]: could not seek to %d: %s", topic, p.number, start, _text(exc))
        return False
    logger.debug(
        "%s[%d]: the end is %d, not %d (listed): reading from %d",
        topic,
        p.number,
        high,
        p.listed,
        start,
    )
    p.start = start
    p.window.clear()
    return True


def _take(
    message: Message,
    found: dict[str, tuple[int, int]],
    wanted: frozenset[str] | None,
    id_field: str,
) -> None:
    """Keep the record's `id_field` (and `timestamp_ms`) if it is a trade (of a wanted pair)
    newer than found: an output record (`pair`), or a source-topic message (one pair's Kraken
    trades, `symbol`, in trade_id order: its last one counts)."""
    value = message.value()
    if not value:
        return
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return
    if isinstance(record, list):
        record = record[-1] if record else None
        if not isinstance(record, dict):
            return
        pair = record.get("symbol")
    elif isinstance(record, dict):
        pair = record.get("pair")
    else:
        return
    trade_id = record.get(id_field)
    if not isinstance(pair, str) or type(trade_id) is not int:
        return  # not a trade, or a transform dropped the fields
    if wanted is not None and pair not in wanted:
        return
    if pair not in found or trade_id > found[pair][0]:
        timestamp_ms = record.get("timestamp_ms")
        found[pair] = (trade_id, timestamp_ms if type(timestamp_ms) is int else 0)


def _result(
    topic: str,
    partitions: list[_Partition],
    wanted: frozenset[str] | None,
    *,
    complete: bool,
    started: float,
) -> LastTradeIds:
    """Merge the partitions' findings and say (log) what could not be determined."""
    lasts: dict[str, tuple[int, int]] = {}
    for p in partitions:
        for pair, last in p.last.items():
            if pair not in lasts or last > lasts[pair]:
                lasts[pair] = last
    found = {pair: last[0] for pair, last in lasts.items()}
    failed = [p for p in partitions if p.failed is not None]
    for p in failed:
        logger.warning(
            "Reading %s[%d] stopped: %s; the pairs not found in it before are not seeded",
            topic,
            p.number,
            p.failed,
        )
    complete = complete and not failed
    unknown: frozenset[str] = frozenset()
    if wanted is not None:
        found = {pair: trade_id for pair, trade_id in found.items() if pair in wanted}
        missing = wanted - found.keys()
        everything_read = complete and all(p.exhausted for p in partitions)
        if missing and not everything_read:
            unknown = missing
            logger.warning(
                "No trade of %s found in %s (records read per partition: %s): "
                "last trade_id unknown, not seeded",
                ", ".join(sorted(missing)),
                topic,
                ", ".join(_progress(p) for p in partitions) or "none",
            )
        elif missing:
            logger.info("No trade of %s in %s: none written", ", ".join(sorted(missing)), topic)
    read = sum(p.read for p in partitions)
    logger.info(
        "Last trade_ids in %s: %s (%d records read in %.2f s)",
        topic,
        found,
        read,
        time.monotonic() - started,
    )
    times = {pair: lasts[pair][1] for pair in found}
    return LastTradeIds(found, unknown=unknown, complete=complete, times=times)


def _progress(p: _Partition) -> str:
    state = "failed" if p.failed else "all" if p.exhausted else "limit" if p.read else "none"
    return f"[{p.number}] {p.read} ({state})"


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _text(exc: KafkaException) -> str:
    return exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
