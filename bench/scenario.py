"""One run of one contender: warm up, fixed rates (latency), then a flood (throughput, CPU)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient, NewTopic

from bench.contenders import Contender, Target
from bench.reader import Arrival, OutputReader
from bench.records import OUTPUT_PARTITIONS, OUTPUT_RETENTION
from bench.sampler import MIB, TreeSampler

__all__ = ["Plan", "RunResult", "create_output_topic", "percentile", "run_once"]

SETTLE_NS = 500_000_000  # the first half second of a rate is not measured
DRAIN_TIMEOUT = 30.0
FLOOD_TIMEOUT = 120.0
WARM_UP_TIMEOUT = 90.0


@dataclass(frozen=True)
class Plan:
    """What one run offers."""

    rates: tuple[float, ...] = (100, 1_000, 10_000)
    rate_seconds: float = 3.0
    flood_trades: int = 250_000


@dataclass
class RunResult:
    """The figures of one run of one contender."""

    contender: str
    latency_ms: dict[float, tuple[float, float, float]]  # rate -> p50, p95, p99
    throughput: float  # trades/s delivered during the flood
    cpu_per_million: float  # CPU seconds of the process tree per million trades (flood)
    peak_rss_mib: float
    offered: int
    delivered: int
    duplicates: int
    notes: list[str] = field(default_factory=list)
    batch: int = 0  # most trades per Kraken frame (0: not set)


def _quiet(phase: str) -> None:
    pass


def create_output_topic(broker: str, topic: str) -> None:
    """The output topic as the pipeline declares it, created before any contender starts."""
    admin = AdminClient({"bootstrap.servers": broker})
    new = NewTopic(topic, OUTPUT_PARTITIONS, 1, config=OUTPUT_RETENTION)
    admin.create_topics([new])[topic].result(timeout=30)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def run_once(
    contender: Contender, target: Target, plan: Plan, log: Callable[[str], None] = _quiet
) -> RunResult:
    """Start `contender`, measure it under `plan`, stop it; `log` hears each phase begin."""
    create_output_topic(target.broker, target.topic)
    reader = OutputReader(target.broker, target.topic).start(wait=False)  # joins meanwhile
    sampler: TreeSampler | None = None
    notes: list[str] = []
    windows: dict[float, tuple[int, int]] = {}
    try:
        log("start")
        contender.start()
        assert contender.process is not None
        sampler = TreeSampler(contender.process.pid).start()
        reader.wait_assigned()
        log("warm-up")
        contender.warm_up(reader, WARM_UP_TIMEOUT)
        _drain(contender, reader, notes, "warm-up")
        for rate in plan.rates:
            log(f"{rate:g} trades/s")
            start = time.time_ns()
            contender.offer(rate, plan.rate_seconds)
            windows[rate] = (start + SETTLE_NS, time.time_ns())
            _drain(contender, reader, notes, f"{rate:g}/s")
        log("flood")
        contender.prepare_flood(plan.flood_trades)
        cpu_before = sampler.cpu_seconds()
        flood_start = time.time_ns()
        contender.flood(plan.flood_trades)
        deadline = time.monotonic() + FLOOD_TIMEOUT
        while not contender.flood_done() and time.monotonic() < deadline:
            time.sleep(0.05)
        _drain(contender, reader, notes, "flood", timeout=max(1.0, deadline - time.monotonic()))
        cpu_used = sampler.cpu_seconds() - cpu_before
    finally:
        log("stop")
        contender.stop()
        if sampler:
            sampler.stop()
        reader.stop()
    if reader.error:
        notes.append(f"reader: {reader.error}")
    return _result(contender, reader.arrivals(), windows, flood_start, cpu_used, sampler, notes)


def _drain(
    contender: Contender,
    reader: OutputReader,
    notes: list[str],
    phase: str,
    timeout: float = DRAIN_TIMEOUT,
) -> None:
    """Wait until everything offered came out, so phases do not overlap."""
    if not reader.wait_for(contender.offered(), timeout):
        notes.append(f"{phase}: {reader.count} of {contender.offered()} records after the wait")


def _result(
    contender: Contender,
    arrivals: list[Arrival],
    windows: dict[float, tuple[int, int]],
    flood_start: int,
    cpu_used: float,
    sampler: TreeSampler | None,
    notes: list[str],
) -> RunResult:
    latencies: dict[float, list[float]] = {rate: [] for rate in windows}
    flood: list[int] = []  # arrival times of the flood's records
    seen: set[tuple[str, int]] = set()
    duplicates = 0
    for arrival in arrivals:
        ident = (arrival.pair, arrival.trade_id)
        if ident in seen:
            duplicates += 1
            continue
        seen.add(ident)
        sent = contender.sent_ns(arrival)
        if sent is None:
            continue
        if sent >= flood_start:
            flood.append(arrival.received_ns)
            continue
        for rate, (start, end) in windows.items():
            if start <= sent < end:
                latencies[rate].append((arrival.received_ns - sent) / 1e6)
                break
    if duplicates:
        notes.append(f"{duplicates} records delivered twice")
    if len(seen) < contender.offered():
        notes.append(f"{contender.offered() - len(seen)} of {contender.offered()} trades missing")
    latency_ms = {}
    for rate, values in latencies.items():
        values.sort()
        latency_ms[rate] = tuple(percentile(values, q) for q in (0.50, 0.95, 0.99))
    span = (max(flood) - min(flood)) / 1e9 if len(flood) > 1 else math.nan
    return RunResult(
        contender=contender.name,
        latency_ms=latency_ms,  # type: ignore[arg-type]
        throughput=len(flood) / span if span else math.nan,
        cpu_per_million=cpu_used / len(flood) * 1e6 if flood else math.nan,
        peak_rss_mib=(sampler.peak_rss / MIB) if sampler else math.nan,
        offered=contender.offered(),
        delivered=len(seen),
        duplicates=duplicates,
        notes=notes,
    )
