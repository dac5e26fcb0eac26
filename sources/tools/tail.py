"""`python -m sources.tools.tail`: print the output topic readably, from a time on, then follow.

    python -m sources.tools.tail --pairs BTC/USD --since 10m
    python -m sources.tools.tail --since 2024-05-01T00:00 --idle 5 --json | jq .price

It reads where the pipeline writes: `Quix__Broker__Address` and `output` (the pipeline's own
variables, names case-insensitive), or `--broker` and `--topic`. It works against the
embedded broker (Tansu) and Redpanda/Kafka alike: partitions are assigned directly (no group
join), the start is found by time (`offsets_for_times`, then records older than `--since` are
skipped), and nothing depends on watermark offsets, which Tansu reports wrongly. It reads
`read_committed`, as consumers of an exactly-once pipeline must.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from ..app.settings import ConfigError, env_lookup, parse_pairs, parse_since

__all__ = ["Record", "Tail", "format_record", "main"]

DEFAULT_BROKER = "localhost:19092"
DEFAULT_TOPIC = "trades"
DEFAULT_SINCE = "10m"
EARLIEST = "earliest"
TRADE_FIELDS = ("pair", "price", "volume", "side", "order_type", "trade_id", "timestamp_ms")
SHOWN = {*TRADE_FIELDS, "timestamp", "origin"}  # the other fields are printed as name=value
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the topic: its key, value (decoded JSON) and timestamp (epoch ms)."""

    key: str | None
    value: Any
    timestamp_ms: int
    raw: bytes


def consumer_config(broker: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A reader's librdkafka settings: short session for Tansu, read_committed, no commits.

    :param extra: more librdkafka settings (SASL, TLS), winning over these.
    """
    return {
        "bootstrap.servers": broker,
        "group.id": f"kraken-trades-tail-{uuid.uuid4().hex[:8]}",  # never joined: assign()
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "session.timeout.ms": 6000,  # Tansu: group operations wait for the session timeout
        "heartbeat.interval.ms": 2000,
        "fetch.wait.max.ms": 100,  # Tansu holds a fetch for its whole wait
        **(extra or {}),
    }


class Tail:
    """Records of `topic` from `since_ms` on (None: the beginning), oldest first per partition.

    :param config: librdkafka settings (`consumer_config`).
    :param wait: seconds to wait for the broker and the topic before giving up.
    """

    def __init__(
        self, config: dict[str, Any], topic: str, since_ms: int | None, *, wait: float = 60.0
    ) -> None:
        self.config = config
        self.topic = topic
        self.since_ms = since_ms
        self.wait = wait
        self.stopped = False

    def records(
        self, *, idle: float | None = None, say: Callable[[str], None] = lambda _: None
    ) -> Iterator[Record]:
        """Yield records until `stop()`, or `idle` seconds without one (None: follow forever).

        :param say: where to tell what it waits for (stderr).
        :raises TimeoutError: the broker or the topic is not there within `wait` seconds.
        """
        consumer = Consumer(self.config)
        try:
            consumer.assign(self._start_positions(consumer, say))
            last_seen = time.monotonic()
            while not self.stopped:
                message = consumer.poll(0.2)
                if message is None:
                    if idle is not None and time.monotonic() - last_seen >= idle:
                        return
                    continue
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(message.error())
                last_seen = time.monotonic()
                timestamp_ms = message.timestamp()[1]
                if self.since_ms is not None and timestamp_ms < self.since_ms:
                    continue  # before --since: a time index is a lower bound, not a filter
                key = message.key()
                value = message.value() or b""
                yield Record(key.decode() if key else None, _decode(value), timestamp_ms, value)
        finally:
            consumer.close()

    def stop(self) -> None:
        self.stopped = True

    def _start_positions(
        self, consumer: Consumer, say: Callable[[str], None]
    ) -> list[TopicPartition]:
        """Each partition's first offset at or after `since_ms` (its end when there is none)."""
        partitions = self._partitions(say)
        if self.since_ms is None:
            return [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions]
        wanted = [TopicPartition(self.topic, p, self.since_ms) for p in partitions]
        # an offset of -1 (OFFSET_END) means no record is that new yet: follow from the end
        return consumer.offsets_for_times(wanted, timeout=max(self.wait, 10.0))

    def _partitions(self, say: Callable[[str], None]) -> list[int]:
        """The topic's partitions, once the broker answers and the topic exists."""
        admin = AdminClient({**self.config, "log_level": 0})
        deadline = time.monotonic() + self.wait
        announced = ""
        while True:
            try:
                # all topics: asking for this one could create it (Tansu does), with defaults
                metadata = admin.list_topics(timeout=2.0).topics.get(self.topic)
                if metadata is not None and metadata.error is None and metadata.partitions:
                    return sorted(metadata.partitions)
                waiting = f"topic {self.topic} does not exist yet"
            except KafkaException:
                waiting = f"no broker answers at {self.config['bootstrap.servers']}"
            if time.monotonic() >= deadline or self.stopped:
                raise TimeoutError(f"{waiting} (waited {self.wait:g} s)")
            if waiting != announced:
                say(f"Waiting: {waiting}")
                announced = waiting
            time.sleep(0.5)


def _decode(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def matches(pair: str | None, patterns: Sequence[str]) -> bool:
    """Whether a record keyed `pair` is wanted: no patterns, or one matches (`BTC/*`, `all`)."""
    if not patterns:
        return True
    return pair is not None and any(p == "all" or fnmatch.fnmatchcase(pair, p) for p in patterns)


def format_record(record: Record) -> str:
    """A trade on one line; anything else (a gap, a candle): its time, key and JSON."""
    when = format_ms(record.timestamp_ms)
    value = record.value
    if not isinstance(value, dict) or not all(field in value for field in TRADE_FIELDS):
        text = orjson.dumps(value).decode() if value is not None else repr(record.raw)
        return f"{when}  {record.key or '-':<10} {text}"
    extra = " ".join(f"{k}={_plain(v)}" for k, v in value.items() if k not in SHOWN)
    line = (
        f"{when}  {value['pair']:<10} #{value['trade_id']:<10} {value['side']:<4} "
        f"{_plain(value['volume']):>14} @ {_plain(value['price']):<14} "
        f"{value['order_type']:<6} {value.get('origin', 'ws')}"
    )
    return f"{line}  {extra}" if extra else line


def format_ms(epoch_ms: int) -> str:
    """`2024-05-01 10:00:00.123` (UTC)."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}"


def _plain(value: Any) -> str:
    """A number as its shortest exact text (never 1e-05), a string as it is."""
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            text = f"{value:.16f}".rstrip("0").rstrip(".")
        return text
    return str(value)


def parse_args(argv: Sequence[str] | None, environ: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sources.tools.tail",
        description="Print the trades topic readably, from a time on, and follow it.",
    )
    parser.add_argument(
        "--pairs",
        default="",
        help="comma-separated pairs or patterns (BTC/USD, */USD, BTC/*); default: all",
    )
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help="records from then on, by their time: a duration before now (10m, 12h, 7d), "
        f"an ISO-8601 time (UTC if no zone) or {EARLIEST}; default {DEFAULT_SINCE}",
    )
    parser.add_argument(
        "--topic",
        default=environ.get("output", DEFAULT_TOPIC),
        help="topic to read; default: the pipeline's `output` variable, else trades",
    )
    parser.add_argument(
        "--broker",
        default=environ.get("quix__broker__address", DEFAULT_BROKER),
        help=f"broker address; default: Quix__Broker__Address, else {DEFAULT_BROKER}",
    )
    parser.add_argument(
        "--idle", type=float, default=None, help="stop after this many seconds without a record"
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after this many records")
    parser.add_argument("--json", action="store_true", help="print each value as JSON, one a line")
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the broker and the topic"
    )
    parser.add_argument(
        "-X",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. -X security.protocol=SASL_SSL (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Print the records; 0 when stopped (Ctrl-C, `--idle`, `--limit`), 1 on a broker failure,
    2 on a bad argument."""
    out = sys.stdout if out is None else out
    args = parse_args(argv, env_lookup())
    try:
        patterns = parse_pairs(args.pairs, setting="--pairs") if args.pairs.strip() else ()
        since = args.since.strip()
        since_ms = None if since == EARLIEST else parse_since(since, setting="--since") // 10**6
        extra = dict(_setting(item) for item in args.extra)
    except ConfigError as exc:
        print(f"tail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tail = Tail(consumer_config(args.broker, extra), args.topic, since_ms, wait=args.wait)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: tail.stop())
    say = _stderr
    start = "the beginning" if since_ms is None else f"{format_ms(since_ms)[:19]} UTC"
    say(f"Reading {args.topic} at {args.broker} from {start} on (Ctrl-C to stop)")
    printed = 0
    try:
        for record in tail.records(idle=args.idle, say=say):
            if not matches(record.key, patterns):
                continue
            line = orjson.dumps(record.value).decode() if args.json else format_record(record)
            print(line, file=out, flush=True)
            printed += 1
            if args.limit is not None and printed >= args.limit:
                break
    except KeyboardInterrupt:
        pass
    except (TimeoutError, KafkaException) as exc:
        say(f"tail: {exc}")
        return EXIT_FAILED
    except BrokenPipeError:  # `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"-X: expected KEY=VALUE, got {item!r}")
    return key.strip(), value


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
