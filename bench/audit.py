"""The audit's read rate beside a plain consumer's, and its memory, on one topic in one run.

1. Writes `trades` records (default 5,000,000) of twelve pairs, four on each of 3
   partitions, as the pipeline writes them (`bench.records.output_record`), 1 ms apart.
2. Reads it whole `runs` times with each reader in turn, each a process of its own, all with
   the audit's consumer settings (`sources.audit.reader.CONSUMER_CONFIG`), in batches of
   10,000:
   - a plain consumer touching each record's bytes and nothing more (`python -m bench.audit`);
   - a plain consumer parsing each record with orjson, as any consumer of the topic does
     (`--parse`): the yardstick of the goal (the audit at >= 80 % of its rate);
   - the audit without `--verify-rest`, with its default `workers` and with one process.
   A read rate is records / (time of the last record - time of the first), as each reader
   measures it: neither the start-up nor the end-of-topic wait counts.
3. The audits' peak RSS (of the process tree: their reader processes included) reading the
   first `first` trades (`--until` the first-th's time) and all of them: flat, if no record
   is kept.

    python -m bench --audit [--audit-trades N] [--audit-first N] [--audit-runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from bench.records import BASE_PRODUCER_CONFIG, OUTPUT_PARTITIONS, output_record
from bench.sampler import MIB, TreeSampler
from bench.scenario import create_output_topic
from sources.audit.parallel import auto_workers
from sources.audit.reader import BATCH, CONSUMER_CONFIG

__all__ = ["AUDIT_FIRST", "AUDIT_RUNS", "AUDIT_TRADES", "run_audit_bench"]

AUDIT_TRADES = 5_000_000
AUDIT_FIRST = 1_000_000
AUDIT_RUNS = 2
# twelve pairs, four on each of the topic's three partitions (the keys' murmur2 hash)
PAIRS = (
    *("LTC/USD", "UNI/USD", "EOS/USD", "MKR/USD"),
    *("BTC/USD", "XRP/USD", "ADA/USD", "DOT/USD"),
    *("ETH/USD", "SOL/USD", "DOGE/USD", "LINK/USD"),
)
WRITER_CONFIG = {"linger.ms": 50, "batch.size": 1_000_000, "compression.type": "lz4"}
IDLE = 10.0  # seconds without a record before a reader gives up (the end comes first)
RSS_EVERY = 0.1  # seconds between two samples of a reader's memory


@dataclass(frozen=True)
class Read:
    """One read of the topic by one reader (a process, and the processes it starts)."""

    reader: str
    records: int
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float = 0.0  # of the process tree, start-up included
    load: float = 0.0  # the machine's 1-minute load average as it ended (others' work too)

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds / self.records * 1e6 if self.records else 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


# reader name -> what runs it (after `python`); the audits add their options
READERS = {
    "plain consumer": ["-m", "bench.audit"],
    "plain consumer + orjson": ["-m", "bench.audit", "--parse"],
    "audit": ["-m", "sources.audit"],
    "audit, 1 process": ["-m", "sources.audit", "--workers", "1"],
}


def write_trades(broker: str, topic: str, count: int) -> int:
    """`count` trades, round-robin over the pairs, 1 ms apart, ending now; the time of the
    first one (ms): the n-th is n - 1 ms later."""
    create_output_topic(broker, topic)
    producer = Producer({**BASE_PRODUCER_CONFIG, **WRITER_CONFIG, "bootstrap.servers": broker})
    start_ms = time.time_ns() // 1_000_000 - count
    next_id = dict.fromkeys(PAIRS, 1_000_000)
    stamps: dict[int, str] = {}
    for n in range(count):
        pair = PAIRS[n % len(PAIRS)]
        millis = start_ms + n
        second = stamps.get(millis // 1000)
        if second is None:
            stamps.clear()
            second = stamps[millis // 1000] = datetime.fromtimestamp(millis // 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
        trade = {
            "symbol": pair,
            "side": "buy" if n % 3 else "sell",
            "price": 100.0 + (n % 1000) / 100,
            "qty": 0.001 + (n % 97) / 1000,
            "ord_type": "limit" if n % 5 else "market",
            "trade_id": next_id[pair],
            "timestamp": f"{second}.{millis % 1000:03d}{n % 1000:03d}Z",
            "timestamp_ms": millis,
        }
        next_id[pair] += 1
        key, value, ms = output_record(trade)
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ms)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "the bench topic was not written whole"
    return start_ms


def _measured(args: list[str]) -> tuple[dict, float, float]:
    """Run `python <args>` (which prints JSON); (its answer, the peak RSS of its process
    tree in MiB: the audit's reader processes included, the tree's CPU seconds)."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.DEVNULL)
        sampler = TreeSampler(process.pid, interval=RSS_EVERY).start()
        process.wait()
        sampler.stop()
        cpu = sampler.cpu_seconds()
        out.seek(0)
        answer = out.read()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{args[:2]} exited {process.returncode}: {answer[-2000:]!r}")
    return orjson.loads(answer), sampler.peak_rss / MIB, cpu


def read(reader: str, broker: str, topic: str, until_ms: int | None = None) -> Read:
    """One read of the whole topic (or up to `until_ms`) by `reader` (see READERS)."""
    args = [*READERS[reader], "--broker", broker, "--topic", topic]
    if reader.startswith("plain"):
        answer, rss, cpu = _measured(args)
        return Read(reader, answer["records"], answer["seconds"], rss, cpu, os.getloadavg()[0])
    args += ["--json", "--gaps", f"no-gaps-{uuid.uuid4().hex[:8]}", "--idle-timeout", str(IDLE)]
    if until_ms is not None:
        args += ["--until", datetime.fromtimestamp(until_ms / 1000, UTC).isoformat()]
    report, rss, cpu = _measured(args)
    if report["summary"]["status"] != "clean":
        raise RuntimeError(f"the audit of the bench topic is not clean: {report['summary']}")
    records, seconds = report["summary"]["trades"], report["read"]["seconds"]
    return Read(reader, records, seconds, rss, cpu, os.getloadavg()[0])


def run_audit_bench(
    broker: str,
    machine_line: str,
    *,
    trades: int = AUDIT_TRADES,
    first: int = AUDIT_FIRST,
    runs: int = AUDIT_RUNS,
    progress: Callable[[str], None] = lambda text: None,
) -> str:
    """Write the topic, read it with every reader in turn, and the Markdown table of it."""
    topic = f"bench-audit-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    start_ms = write_trades(broker, topic, trades)
    progress(f"audit bench: {trades:,} trades written in {time.monotonic() - started:.0f} s")
    reads: dict[str, list[Read]] = {name: [] for name in READERS}
    for run in range(1, runs + 1):
        for name in READERS:
            done = read(name, broker, topic)
            reads[name].append(done)
            progress(
                f"audit bench run {run}/{runs}: {name}: {done.records:,} records at "
                f"{done.rate:,.0f}/s, {done.cpu_per_million:.1f} CPU s/M, "
                f"peak RSS {done.peak_rss_mib:.0f} MiB, load {done.load:.1f}"
            )
    heads = {
        name: read(name, broker, topic, start_ms + first - 1)
        for name in READERS
        if name.startswith("audit")
    }
    for name, head in heads.items():
        progress(f"audit bench: {name}, first {head.records:,}: {head.peak_rss_mib:.0f} MiB")
    return audit_markdown(reads, heads, machine_line=machine_line, trades=trades)


def audit_markdown(
    reads: dict[str, list[Read]], heads: dict[str, Read], *, machine_line: str, trades: int
) -> str:
    """The audit bench's table, with its caption."""
    names = list(reads)
    rate = {n: statistics.median(r.rate for r in reads[n]) for n in names}
    rss = {n: statistics.median(r.peak_rss_mib for r in reads[n]) for n in names}
    cpu = {n: statistics.median(r.cpu_per_million for r in reads[n]) for n in names}
    loads = [r.load for n in names for r in reads[n]]
    first = next(iter(heads.values())).records if heads else 0

    def row(label: str, cells: list[str]) -> str:
        return "| " + " | ".join([label, *cells]) + " |"

    rows = [
        row("", names),
        row("---", ["--:"] * len(names)),
        row(f"read rate, {trades:,} trades (records/s)", [f"{rate[n]:,.0f}" for n in names]),
        row("each run (records/s)", [", ".join(f"{r.rate:,.0f}" for r in reads[n]) for n in names]),
        row(
            "audit / plain consumer + orjson",
            ["", "", *(f"{rate[n] / rate[names[1]]:.2f}" for n in names[2:])],
        ),
        row(
            "audit / plain consumer",
            ["", "", *(f"{rate[n] / rate[names[0]]:.2f}" for n in names[2:])],
        ),
        row(
            "CPU seconds per million records (process tree)",
            [f"{cpu[n]:.1f}" for n in names],
        ),
        row(
            f"peak RSS, first {first:,} trades (MiB)",
            [f"{heads[n].peak_rss_mib:.0f}" if n in heads else "" for n in names],
        ),
        row(f"peak RSS, {trades:,} trades (MiB)", [f"{rss[n]:.0f}" for n in names]),
    ]
    return "\n".join(
        [
            f"### The audit (`python -m bench --audit`)\n\nMedians of {len(reads[names[0]])} runs, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            f"Machine: {machine_line}.",
            f"Setup: one topic of {OUTPUT_PARTITIONS} partitions, {trades:,} trades of "
            f"{len(PAIRS)} pairs (four a partition) as the pipeline writes them, in lz4 batches "
            "of up to 1 MB; each reader a process of its own (the audit's reader processes "
            "included in its memory), reading it all, in turn, with the audit's consumer "
            f"settings in batches of {BATCH:,}; the audit without --verify-rest, with its "
            f"default `workers` ({auto_workers(OUTPUT_PARTITIONS)} processes here) and with one. "
            "A rate is records / "
            "(last record's time - first record's), as each reader measures it; RSS is the "
            "peak of the process tree. The machine's load average after each read: "
            f"{min(loads):.1f} to {max(loads):.1f} (other work on it included).",
            "",
            "\n".join(rows),
            "",
        ]
    )


def _plain_read(broker: str, topic: str, parse: bool = False) -> dict:
    """What the plain consumer measures: records and the seconds from the first to the last."""
    consumer = Consumer(
        {**CONSUMER_CONFIG, "bootstrap.servers": broker, "group.id": uuid.uuid4().hex}
    )
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    pending, records = set(partitions), 0
    first: float | None = None
    last = seen = time.monotonic()
    while pending and time.monotonic() - seen < IDLE:
        messages = consumer.consume(BATCH, 0.2)
        now = time.monotonic()
        for message in messages:
            error = message.error()
            if error is None:
                value = message.value()
                if parse:
                    orjson.loads(value)
                records += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
        if messages:
            first = now if first is None else first
            last = seen = time.monotonic()
    consumer.close()
    return {"records": records, "seconds": last - (first or last)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the bench's plain consumer: read a topic")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--parse", action="store_true", help="and parse each record (orjson)")
    args = parser.parse_args(argv)
    print(orjson.dumps(_plain_read(args.broker, args.topic, args.parse)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
