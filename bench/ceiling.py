"""Contender 3, the producer ceiling: confluent-kafka producing pre-serialized records.

No WebSocket and no parsing: the records (the same normalized JSON the pipeline writes, made
from simulated trades) are serialized before the clock starts. Each record carries the time
it was produced in the `bench-sent-ns` header, from which the bench computes latency.

It takes commands on stdin, one per line, and answers `done <records produced>` on stdout:

    rate <trades/s> <seconds>   produce at a fixed rate for a while
    flood <count>               produce `count` records as fast as possible, then flush
    quit                        flush and exit

    python -m bench.ceiling --broker HOST:PORT --topic T --pairs A/B,C/D --records N
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

import orjson
from confluent_kafka import Producer

from bench.records import BASE_PRODUCER_CONFIG, SENT_HEADER, output_record
from simulator.market import Market

PACE_STEP = 0.001  # seconds between two bursts at a fixed rate


def make_records(pairs: list[str], count: int) -> list[tuple[str, bytes, int]]:
    """`count` (key, value, timestamp_ms) records of simulated trades, round-robin over pairs."""
    market = Market(pairs, seed=1)
    records = []
    while len(records) < count:
        for trade in market.next_trades(min(10_000, count - len(records))):
            key, value, ms = output_record(trade.to_ws())
            # orjson's bytes keep a 4 KiB allocation: a copy holds only the record
            records.append((key, bytes(memoryview(value)), ms))
    return records


class Ceiling:
    """Produces the prepared records in order, at a rate or as fast as it can."""

    def __init__(self, producer: Producer, topic: str, records: list[tuple[str, bytes, int]]):
        self.producer = producer
        self.topic = topic
        self._records: Iterator[tuple[str, bytes, int]] = iter(records)
        self.produced = 0

    def _produce(self, n: int) -> None:
        produce = self.producer.produce
        topic = self.topic
        for key, value, ms in _take(self._records, n):
            headers = [(SENT_HEADER, time.time_ns().to_bytes(8, "big"))]
            while True:
                try:
                    produce(topic, value, key, timestamp=ms, headers=headers)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.produced += 1
        self.producer.poll(0)

    def rate(self, rate: float, seconds: float) -> None:
        start = time.monotonic()
        done = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(rate * elapsed) - done
            if due > 0:
                self._produce(due)
                done += due
            time.sleep(PACE_STEP)
        self.producer.flush(30)

    def flood(self, count: int) -> None:
        while count > 0:
            step = min(count, 1000)
            self._produce(step)
            count -= step
        self.producer.flush(60)


def _take(records: Iterator[tuple[str, bytes, int]], n: int) -> Iterator[tuple[str, bytes, int]]:
    for _ in range(n):
        record = next(records, None)
        if record is None:
            raise SystemExit("ceiling: out of prepared records (raise --records)")
        yield record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--pairs", required=True, help="comma-separated Kraken v2 symbols")
    parser.add_argument("--records", type=int, required=True, help="records to prepare")
    parser.add_argument("--producer-config", default="{}", help="JSON librdkafka settings")
    args = parser.parse_args(argv)
    config = {**BASE_PRODUCER_CONFIG, **orjson.loads(args.producer_config)}
    producer = Producer({**config, "bootstrap.servers": args.broker})
    ceiling = Ceiling(producer, args.topic, make_records(args.pairs.split(","), args.records))
    print("ready", flush=True)
    for line in sys.stdin:
        command, *params = line.split()
        if command == "rate":
            ceiling.rate(float(params[0]), float(params[1]))
        elif command == "flood":
            ceiling.flood(int(params[0]))
        elif command == "quit":
            break
        print(f"done {ceiling.produced}", flush=True)
    producer.flush(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
