"""Helpers of the audit's tests: trades topics as the pipeline writes them, and corruptions.

A topic is a list of `Written` records in topic order (partition, key, value, Kafka
timestamp): made from the simulator's market like the pipeline makes them, or read back from
a real topic. Corruptions work on copies; the audit's pure layer reads them
(`audit_report`), or a producer writes them to a broker (`write_topic`), each record to the
partition it had.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from confluent_kafka import Producer

from simulator import Market, SimTrade
from sources.audit.accounting import RecordMessage, TopicAudit
from sources.audit.cli import run
from sources.audit.explain import GapEvents
from sources.audit.pairs import PairSelection
from sources.audit.progress import Progress
from sources.audit.reader import ReadStats
from sources.audit.report import build_report
from sources.audit.settings import AuditSettings
from sources.kraken.trade import decimal_text, parse_timestamp_ms
from tests.support.kafka import Record, create_topic

PARTITIONS = 3


@dataclass(frozen=True)
class Written:
    """One record of a topic, in the order a reader sees it."""

    partition: int
    key: str | None
    value: dict[str, Any]
    timestamp_ms: int

    @property
    def pair(self) -> str:
        return self.value["pair"]

    @property
    def trade_id(self) -> int:
        return self.value["trade_id"]


def trade_value(trade: SimTrade, *, decimal_strings: bool = False, origin: str = "ws") -> dict:
    """The output record of a simulated trade, as the trades pipeline writes it."""
    stamp = trade.timestamp()
    price, volume = trade.price, trade.qty
    if decimal_strings:
        price, volume = decimal_text(price), decimal_text(volume)
    return {
        "pair": trade.symbol,
        "price": price,
        "volume": volume,
        "side": trade.side,
        "order_type": trade.ord_type,
        "trade_id": trade.trade_id,
        "timestamp_ms": parse_timestamp_ms(stamp),
        "timestamp": stamp,
        "origin": origin,
    }


def positions(topic: list[Written], pair: str) -> list[int]:
    """The indexes of `pair`'s records in `topic`, in order."""
    return [i for i, r in enumerate(topic) if r.pair == pair]


def partition_of(pair: str, partitions: int = PARTITIONS) -> int:
    """A stable partition per pair (which one does not matter to the audit)."""
    return zlib.crc32(pair.encode()) % partitions


def market_topic(market: Market, *, decimal_strings: bool = False) -> list[Written]:
    """Every trade of the market's history, each pair in trade_id order, pairs interleaved."""
    histories = [market.history(pair) for pair in market.pairs]
    topic = []
    for row in zip(*histories, strict=False):
        for trade in row:
            value = trade_value(trade, decimal_strings=decimal_strings)
            topic.append(
                Written(partition_of(trade.symbol), trade.symbol, value, value["timestamp_ms"])
            )
    return topic


def from_records(records: Iterable[Record]) -> list[Written]:
    """A topic read back with `tests.support.kafka.consume`, in the order it was read."""
    return [Written(r.partition, r.key, r.value, r.timestamp_ms) for r in records]


def messages(topic: list[Written]) -> list[RecordMessage]:
    """The topic as a consumer's messages (offsets counted per partition)."""
    offsets: dict[int, int] = {}
    out = []
    for record in topic:
        offset = offsets.get(record.partition, 0)
        offsets[record.partition] = offset + 1
        out.append(
            RecordMessage(
                orjson.dumps(record.value),
                key=record.key,
                timestamp_ms=record.timestamp_ms,
                partition=record.partition,
                offset=offset,
            )
        )
    return out


def audit_report(
    topic: list[Written],
    gaps: Iterable[dict] = (),
    *,
    pairs: str = "all",
    strict: bool = False,
    **window: int | None,
) -> dict[str, Any]:
    """The audit's report of `topic` (and gap events), by its pure layer: no broker."""
    settings = AuditSettings(pairs=PairSelection.parse(pairs), strict=strict, **window)
    audit = TopicAudit(settings.pairs, settings.since_ms, settings.until_ms)
    batch = messages(topic)
    for start in range(0, len(batch), 1000):
        audit.add_batch(batch[start : start + 1000])
    events = GapEvents()
    for event in gaps:
        events.add(event)
    stats = ReadStats(records=len(topic), partitions=PARTITIONS)
    return build_report(settings, audit, stats, events)


def gap_event(pair: str, first: int, last: int, reason: str = "rest_lacks") -> dict:
    """A gap event as the pipeline writes it (gap.v1)."""
    return {
        "pair": pair,
        "first_trade_id": first,
        "last_trade_id": last,
        "count": last - first + 1,
        "previous_timestamp_ms": None,
        "next_timestamp_ms": None,
        "reason": reason,
        "detail": "Kraken REST does not have them",
        "detected_at_ms": 0,
    }


def write_topic(broker: str, topic: str, records: list[Written], partitions: int = PARTITIONS):
    """Create `topic` and write `records` to it, each to its own partition, in order."""
    create_topic(broker, topic, partitions)
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    for record in records:
        producer.produce(
            topic,
            orjson.dumps(record.value),
            record.key,
            partition=record.partition % partitions,
            timestamp=record.timestamp_ms,
        )
    assert producer.flush(30) == 0


def write_gaps(broker: str, topic: str, events: list[dict]) -> None:
    """Create the gaps topic `topic` with these gap events."""
    write_topic(
        broker,
        topic,
        [Written(partition_of(e["pair"]), e["pair"], e, 0) for e in events],
    )


def audit_topic(*options: str) -> tuple[int, dict[str, Any]]:
    """Run the audit (in this process) with `--json` and these options: (exit code, report).
    One reader process unless the options say `--workers` (spawning costs each test time)."""
    workers = () if "--workers" in options else ("--workers", "1")
    settings = AuditSettings.parse(
        [*options, *workers, "--json", "--idle-timeout", "2"], environ={}
    )
    out = io.StringIO()
    code = run(settings, out, Progress(enabled=False))
    return code, orjson.loads(out.getvalue())


def pair_report(report: dict[str, Any], pair: str) -> dict[str, Any]:
    [found] = [p for p in report["pairs"] if p["pair"] == pair]
    return found


def changed(record: Written, **fields: Any) -> Written:
    """A copy of `record` with some of its value's fields changed."""
    return replace(record, value={**record.value, **fields})


def found(report: dict[str, Any]) -> dict[str, set]:
    """Every finding of a report, as sets of tuples with trade_ids: `holes` (pair, first,
    last, explained), `duplicates` (pair, id), `late` (pair, first, last, after), `time`,
    `key`, `invalid` and `undetermined` (pair, id)."""
    kinds: dict[str, set] = {
        k: set() for k in ("holes", "duplicates", "late", "time", "key", "invalid", "undetermined")
    }
    for pair in report["pairs"]:
        name = pair["pair"]
        kinds["holes"] |= {
            (name, h["first_trade_id"], h["last_trade_id"], h["explained"]) for h in pair["holes"]
        }
        for dup in pair["duplicates"]:
            kinds["duplicates"] |= {(name, i) for i in range(dup["first_id"], dup["last_id"] + 1)}
        kinds["late"] |= {
            (name, r["first_id"], r["last_id"], r["after_id"]) for r in pair["out_of_order"]
        }
        kinds["undetermined"] |= {(name, r["first_id"]) for r in pair["undetermined"]}
        kinds["time"] |= {(name, t["trade_id"]) for t in pair["time_mismatches"]}
        kinds["key"] |= {(name, k["trade_id"]) for k in pair["key_mismatches"]}
        kinds["invalid"] |= {(name, i["trade_id"]) for i in pair["invalid"]}
    return kinds


def only(**expected: set) -> dict[str, set]:
    """`found`'s answer for a report with these findings and no other."""
    nothing = {k: set() for k in ("holes", "duplicates", "late", "time", "key", "invalid")}
    return {**nothing, "undetermined": set(), **expected}
