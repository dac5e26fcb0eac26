"""`python -m bench --many-pairs`: the pipeline with hundreds of simulated pairs.

The same run as the 2-pair benchmark (`bench/scenario.py`: fixed rate, then a flood), with
`--many-pairs-count` pairs (500) traded round-robin, so 1,000 trades/s is 2 trades/s per pair
and nearly every trade of a frame is of another pair. Before it measures, it waits until the
simulator holds a subscription for every pair and reports how long that took from the start
of the process (connections opened, subscribe requests paced as the pipeline paces them).
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from bench.contenders import Pipeline, Target
from bench.reader import OutputReader
from bench.report import Summary, format_int, format_one, format_triple
from bench.scenario import Plan, RunResult, run_once
from simulator.market import generated_pairs

__all__ = [
    "MANY_PAIRS",
    "ManyPairsResult",
    "many_pairs_markdown",
    "many_pairs_plan",
    "run_many_pairs",
]

MANY_PAIRS = 500
MANY_RATE = 1_000.0  # trades/s over all the pairs
MANY_RATE_SECONDS = 5.0
MANY_FLOOD = 100_000
SUBSCRIBE_TIMEOUT = 180.0


def many_pairs_plan(rate: float = MANY_RATE, flood: int = MANY_FLOOD) -> Plan:
    """One fixed rate for latency, then a flood."""
    return Plan(rates=(rate,), rate_seconds=MANY_RATE_SECONDS, flood_trades=flood)


class ManyPairsPipeline(Pipeline):
    """The pipeline, timed from its start until the simulator holds every pair's subscription."""

    name = "pipeline"

    def start(self) -> None:
        self.started = time.monotonic()
        self.subscribed_after = math.nan
        self.connections = 0
        super().start()

    def warm_up(self, reader: OutputReader, timeout: float) -> None:
        wanted = set(self.target.pairs)
        deadline = self.started + SUBSCRIBE_TIMEOUT
        while True:
            self._check_alive()
            subscriptions = self.sim.subscriptions
            held = set().union(*subscriptions) if subscriptions else set()
            if wanted <= held:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(wanted - held)} of {len(wanted)} pairs not subscribed after "
                    f"{SUBSCRIBE_TIMEOUT:g} s\n{self.log()}"
                )
            time.sleep(0.02)
        self.subscribed_after = time.monotonic() - self.started
        self.connections = len(subscriptions)
        super().warm_up(reader, timeout)


@dataclass
class ManyPairsResult:
    """One run: the scenario's figures, and the subscription's."""

    run: RunResult
    pairs: int
    subscribed_after: float  # seconds from the process start to every pair subscribed
    connections: int


def run_many_pairs(
    target: Target,
    plan: Plan,
    *,
    pairs: int = MANY_PAIRS,
    runs: int = 1,
    progress: Callable[[str], None] = print,
    log: Callable[[str], None] | None = None,
) -> list[ManyPairsResult]:
    """`runs` runs of the pipeline with `pairs` generated pairs, each on a fresh topic."""
    many = replace(target, pairs=generated_pairs(pairs))
    results = []
    for run in range(1, runs + 1):
        many.topic = f"bench-many-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        contender = ManyPairsPipeline(many)
        result = run_once(contender, many, plan, log or (lambda phase: None))
        results.append(
            ManyPairsResult(result, pairs, contender.subscribed_after, contender.connections)
        )
        rate = plan.rates[0]
        progress(
            f"many pairs, run {run}/{runs}: {pairs} pairs subscribed after "
            f"{contender.subscribed_after:.1f} s on {contender.connections} connection(s); "
            f"{result.throughput:,.0f} trades/s, p99@{rate:g}/s "
            f"{result.latency_ms[rate][2]:.1f} ms, {result.cpu_per_million:.1f} CPU s/M, "
            f"{result.peak_rss_mib:.0f} MiB ({time.monotonic() - started:.0f} s)"
            + "".join(f"\n  note: {note}" for note in result.notes)
        )
    return results


def many_pairs_markdown(
    results: list[ManyPairsResult],
    plan: Plan,
    *,
    two_pairs: Summary | None = None,
    machine_line: str | None = None,
    batch: int,
) -> str:
    """The many-pairs table (beside the 2-pair pipeline's figures when given)."""
    summary = Summary([r.run for r in results])
    pairs = results[0].pairs
    rate = plan.rates[0]
    subscribed = _median([r.subscribed_after for r in results])
    connections = _median([float(r.connections) for r in results])
    figures: list[tuple[str, Callable[[Summary], str]]] = [
        ("throughput (trades/s)", lambda s: format_int(s.throughput)),
        (
            f"latency at {rate:,.0f}/s: p50 / p95 / p99 (ms)",
            lambda s: format_triple(s.latency(rate)),
        ),
        ("CPU seconds per million trades", lambda s: format_one(s.cpu_per_million)),
        ("peak RSS of the process tree (MiB)", lambda s: format_int(s.peak_rss_mib)),
    ]
    columns = [summary, *([two_pairs] if two_pairs else [])]
    head = [f"pipeline, {pairs} pairs", *(["pipeline, 2 pairs"] if two_pairs else [])]
    rows = [[label, *(cell(column) for column in columns)] for label, cell in figures]
    rows += [
        ["seconds from start until every pair is subscribed", format_one(subscribed)],
        ["WebSocket connections", format_int(connections)],
    ]
    lines = [
        "| | " + " | ".join(head) + " |",
        "| --- |" + " --: |" * len(head),
        *("| " + " | ".join(row + [""] * (len(head) + 1 - len(row))) + " |" for row in rows),
    ]
    notes = [f"- run {i + 1}: {note}" for i, r in enumerate(results) for note in r.run.notes]
    caption = (
        f"Many pairs: medians of {len(results)} run(s), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Setup: {pairs} simulated pairs "
        f"traded round-robin (so {rate / pairs:g} trades/s per pair at {rate:,.0f}/s), frames of "
        f"up to {batch} trades, {rate:,.0f} trades/s for {plan.rate_seconds:g} s (the first "
        f"0.5 s not measured), then a flood of {plan.flood_trades:,} trades; the pipeline's "
        "default settings (snapshot off)."
    )
    return "\n".join(
        [
            caption,
            *([f"Machine: {machine_line}."] if machine_line else []),
            "",
            *lines,
            *(["", "Notes:", *notes] if notes else []),
            "",
        ]
    )


def _median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan
