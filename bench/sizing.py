"""`python -m bench --sizing`: the pipeline's CPU and memory by number of pairs, at steady rates.

For each pair count (2, 10, 100, 500 and 1,000 by default) the pipeline streams that many
simulated pairs at `--sizing-rate` trades/s each (2: busier than all but Kraken's top pairs)
for `--sizing-seconds` after a settling time. Its two processes are measured apart: the
dataframe (the main process: consumer, dedupe state, output producer) and the source (the
process Quix Streams spawns: WebSocket, REST, source producer). CPU is user + system seconds
over the window (all threads, librdkafka's and RocksDB's included); RSS is the last and the
largest value sampled each second. A least-squares line through the counts gives the cost of
one pair more, from which the README's sizing and quix.yaml's resources are set.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, replace

import psutil

from bench.contenders import Target
from bench.many_pairs import ManyPairsPipeline
from bench.reader import OutputReader
from bench.sampler import MIB
from bench.scenario import create_output_topic
from bench.threads import ThreadCpu
from simulator.market import generated_pairs

__all__ = ["SizingPoint", "run_sizing", "sizing_markdown"]

SETTLE = 10.0  # seconds at the rate before the window starts
WARM_UP_TIMEOUT = 90.0
ROLES = ("dataframe", "source")


@dataclass
class SizingPoint:
    """The figures of one pair count."""

    pairs: int
    rate: float  # trades/s offered over all pairs
    subscribed_after: float  # seconds from the start until every pair was subscribed
    cpu: dict[str, float]  # role -> cores (CPU seconds per second) over the window
    rss_mib: dict[str, float]  # role -> RSS at the end of the window
    peak_rss_mib: dict[str, float]  # role -> largest RSS sampled in the window
    offered: int
    delivered: int

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())

    @property
    def total_rss(self) -> float:
        return sum(self.rss_mib.values())

    @property
    def total_peak_rss(self) -> float:
        return sum(self.peak_rss_mib.values())


def run_sizing(
    target: Target,
    counts: list[int],
    *,
    per_pair_rate: float,
    seconds: float,
    machine_line: str,
) -> str:
    """Measure each pair count in turn; return the Markdown report."""
    points = []
    for count in counts:
        point = measure(target, count, per_pair_rate=per_pair_rate, seconds=seconds)
        points.append(point)
        _progress(
            f"sizing: {count} pairs at {point.rate:g} trades/s: CPU "
            + ", ".join(f"{role} {point.cpu[role]:.3f}" for role in ROLES)
            + " cores; RSS "
            + ", ".join(f"{role} {point.rss_mib[role]:.0f}" for role in ROLES)
            + f" MiB; subscribed after {point.subscribed_after:.1f} s; "
            f"{point.delivered:,} of {point.offered:,} trades out"
        )
    return sizing_markdown(points, per_pair_rate, seconds, machine_line)


def measure(target: Target, count: int, *, per_pair_rate: float, seconds: float) -> SizingPoint:
    """One pair count: start, subscribe, warm up, settle, measure the window, stop."""
    pairs = generated_pairs(count)
    sized = replace(target, pairs=pairs, topic=f"bench-sizing-{uuid.uuid4().hex[:8]}", soak=True)
    rate = per_pair_rate * count
    create_output_topic(sized.broker, sized.topic)
    reader = OutputReader(sized.broker, sized.topic, keep=False, fetch_wait_ms=100)
    reader.start(wait=False)
    contender = ManyPairsPipeline(sized)
    try:
        contender.start()
        assert contender.process is not None
        reader.wait_assigned()
        contender.warm_up(reader, WARM_UP_TIMEOUT)
        contender.sim.set_rate(rate)
        time.sleep(SETTLE)
        processes = _Processes(contender.process.pid)
        threads = ThreadCpu(contender.process.pid, "dataframe")
        before = threads.read().by_process
        started = time.monotonic()
        peak: dict[str, float] = dict.fromkeys(ROLES, 0.0)
        while (left := started + seconds - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            rss = processes.rss()
            peak = {role: max(peak[role], rss[role]) for role in ROLES}
        elapsed = time.monotonic() - started
        after = threads.read().by_process
        last = processes.rss()
        contender.sim.set_rate(0)
        reader.wait_for(contender.offered(), 30)
        cpu = {
            role: (sum(after.get(role, (0, 0))) - sum(before.get(role, (0, 0)))) / elapsed
            for role in ROLES
        }
        return SizingPoint(
            pairs=count,
            rate=rate,
            subscribed_after=contender.subscribed_after,
            cpu=cpu,
            rss_mib=last,
            peak_rss_mib=peak,
            offered=contender.offered(),
            delivered=reader.count,
        )
    finally:
        contender.stop()
        reader.stop()


class _Processes:
    """RSS of the pipeline's dataframe (root) and source (spawned child) processes, in MiB."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def rss(self) -> dict[str, float]:
        result = dict.fromkeys(ROLES, 0.0)
        try:
            result["dataframe"] = self.root.memory_info().rss / MIB
            children = self.root.children(recursive=True)
        except psutil.Error:
            return result
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    result["source"] += child.memory_info().rss / MIB
            except psutil.Error:
                continue
        return result


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line through the points: (intercept, slope)."""
    n = len(xs)
    if n < 2:
        return (ys[0] if ys else 0.0), 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    return mean_y - slope * mean_x, slope


def sizing_markdown(
    points: list[SizingPoint], per_pair_rate: float, seconds: float, machine_line: str
) -> str:
    """The table of the pair counts and the per-pair line."""
    rows = [
        "| pairs | trades/s | CPU dataframe / source / total (cores) | "
        "RSS dataframe / source / total (MiB) | peak RSS total (MiB) | subscribed after (s) |",
        "| --: | --: | --: | --: | --: | --: |",
    ]
    for p in points:
        rows.append(
            f"| {p.pairs:,} | {p.rate:,.0f} | {p.cpu['dataframe']:.3f} / {p.cpu['source']:.3f} / "
            f"{p.total_cpu:.3f} | {p.rss_mib['dataframe']:.0f} / {p.rss_mib['source']:.0f} / "
            f"{p.total_rss:.0f} | {p.total_peak_rss:.0f} | {p.subscribed_after:.1f} |"
        )
    xs = [float(p.pairs) for p in points]
    rss0, rss_per_pair = fit(xs, [p.total_rss for p in points])
    cpu0, cpu_per_pair = fit(xs, [p.total_cpu for p in points])
    lost = [p for p in points if p.delivered < p.offered]
    lines = [
        f"Sizing, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: the pipeline with "
        f"simulated pairs at {per_pair_rate:g} trades/s each, measured over {seconds:g} s after "
        f"{SETTLE:g} s at the rate.",
        f"Machine: {machine_line}.",
        "",
        *rows,
        "",
        f"Least-squares line: RSS ≈ {rss0:.0f} MiB + {rss_per_pair * 1024:.0f} KiB per pair; "
        f"CPU ≈ {cpu0 * 1000:.0f} + {cpu_per_pair * 1000:.2f} millicores per pair "
        f"(at {per_pair_rate:g} trades/s per pair: "
        f"{cpu_per_pair / per_pair_rate * 1e6:.0f} millicores per 1,000 trades/s).",
    ]
    if lost:
        lines.append(
            "Not all out by the end: "
            + ", ".join(f"{p.pairs} pairs: {p.delivered:,} of {p.offered:,}" for p in lost)
        )
    return "\n".join([*lines, ""])


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
