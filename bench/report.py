"""The Markdown report: the machine, the medians of the runs, and the ratios."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata

import confluent_kafka

from bench.scenario import Plan, RunResult

__all__ = ["Summary", "frames_markdown", "machine", "markdown", "summarize"]

COLUMNS = ("pipeline", "direct loop", "ceiling")
# The goals the pipeline is judged against, at every frame size (issue 19).
GOAL_THROUGHPUT_RATIO = 0.6  # pipeline / direct loop, at least
GOAL_P99_RATIO = 2.0  # pipeline / direct loop at 1,000 trades/s, at most
GOAL_RATE = 1_000.0


class Summary:
    """The median of each figure over the runs of one contender."""

    def __init__(self, runs: Sequence[RunResult]) -> None:
        self.runs = list(runs)
        self.throughput = _median(r.throughput for r in runs)
        self.cpu_per_million = _median(r.cpu_per_million for r in runs)
        self.peak_rss_mib = _median(r.peak_rss_mib for r in runs)
        rates = runs[0].latency_ms.keys() if runs else ()
        self.latency_ms = {
            rate: tuple(_median(r.latency_ms[rate][i] for r in runs) for i in range(3))
            for rate in rates
        }

    def latency(self, rate: float) -> tuple[float, float, float]:
        """p50, p95, p99 in ms at `rate` (NaN when not measured)."""
        return self.latency_ms.get(rate, (math.nan, math.nan, math.nan))  # type: ignore[return-value]


def summarize(results: Sequence[RunResult]) -> dict[str, Summary]:
    """Contender name -> the medians of its runs."""
    names = dict.fromkeys(r.contender for r in results)
    return {name: Summary([r for r in results if r.contender == name]) for name in names}


def machine(broker: str) -> str:
    """One line naming the hardware and the software versions."""
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores; Linux {platform.release()}; "
        f"Python {platform.python_version()}; quixstreams {metadata.version('quixstreams')}; "
        f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka "
        f"{confluent_kafka.libversion()[0]}); broker: {broker}"
    )


def frames_markdown(
    by_batch: dict[int, dict[str, Summary]],
    plan: Plan,
    *,
    machine_line: str,
    setup: str,
    runs: int,
) -> str:
    """The pipeline against the direct loop at each frame size, with the goals."""
    goal_rate = GOAL_RATE if GOAL_RATE in plan.rates else plan.rates[0]
    head = [
        "frames of up to",
        "pipeline (trades/s)",
        "direct loop (trades/s)",
        f"pipeline / direct loop (goal ≥ {GOAL_THROUGHPUT_RATIO:g})",
        f"p99 at {goal_rate:,.0f}/s: pipeline / direct loop (ms)",
        f"p99 ratio (goal ≤ {GOAL_P99_RATIO:g})",
        "CPU s per million trades: pipeline / direct loop",
    ]
    rows = [head, ["--:", *(["--:"] * (len(head) - 1))]]
    for batch, summaries in by_batch.items():
        pipeline, direct = summaries.get("pipeline"), summaries.get("direct loop")
        if pipeline is None or direct is None:
            continue
        p99 = pipeline.latency(goal_rate)[2], direct.latency(goal_rate)[2]
        rows.append(
            [
                f"{batch} trade{'s' if batch > 1 else ''}",
                format_int(pipeline.throughput),
                format_int(direct.throughput),
                _judged(
                    pipeline.throughput, direct.throughput, GOAL_THROUGHPUT_RATIO, at_least=True
                ),
                f"{format_one(p99[0])} / {format_one(p99[1])}",
                _judged(p99[0], p99[1], GOAL_P99_RATIO, at_least=False),
                f"{format_one(pipeline.cpu_per_million)} / {format_one(direct.cpu_per_million)}",
            ]
        )
    table = "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
    return "\n".join(
        [
            f"Medians of {runs} runs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
            "each run measures every frame size, the pipeline and the direct loop one after "
            "the other.",
            f"Machine: {machine_line}.",
            f"Setup: {setup}.",
            "",
            table,
            "",
        ]
    )


def _judged(mine: float, theirs: float, goal: float, *, at_least: bool) -> str:
    """The ratio, marked when it misses the goal."""
    ratio = _ratio(mine, theirs)
    if ratio == "n/a":
        return ratio
    met = float(ratio) >= goal if at_least else float(ratio) <= goal
    return ratio if met else f"**{ratio}** (missed)"


def markdown(summaries: dict[str, Summary], plan: Plan, *, title: str, runs: int) -> str:
    """The results table of one frame size, with its caption."""
    present = [c for c in COLUMNS if c in summaries]
    others = [c for c in ("direct loop", "ceiling") if c in summaries and "pipeline" in summaries]
    head = ["", *present, *(f"pipeline / {c}" for c in others)]
    rows = [head, ["---", *(["--:"] * (len(head) - 1))]]
    for label, cell, compared in _figures(plan):
        cells = [label, *(cell(summaries[c]) for c in present)]
        pipeline = compared(summaries["pipeline"]) if others else math.nan
        cells += [_ratio(pipeline, compared(summaries[c])) for c in others]
        rows.append(cells)
    table = "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
    notes = [
        f"- {summary.runs[0].contender}, run {i + 1}: {note}"
        for summary in summaries.values()
        for i, result in enumerate(summary.runs)
        for note in result.notes
    ]
    return "\n".join(
        [
            f"{title}: medians of {runs} runs. Latency ratios compare p99.",
            "",
            table,
            *(["", "Notes:", *notes] if notes else []),
            "",
        ]
    )


Figure = tuple[str, Callable[[Summary], str], Callable[[Summary], float]]


def _figures(plan: Plan) -> list[Figure]:
    """Each row: its label, its cell, and the number the ratio columns compare."""
    figures: list[Figure] = [
        ("throughput (trades/s)", lambda s: format_int(s.throughput), lambda s: s.throughput)
    ]
    for rate in plan.rates:
        figures.append(
            (
                f"latency at {rate:,.0f}/s: p50 / p95 / p99 (ms)",
                lambda s, r=rate: format_triple(s.latency(r)),
                lambda s, r=rate: s.latency(r)[2],
            )
        )
    figures += [
        (
            "CPU seconds per million trades",
            lambda s: format_one(s.cpu_per_million),
            lambda s: s.cpu_per_million,
        ),
        (
            "peak RSS of the process tree (MiB)",
            lambda s: format_int(s.peak_rss_mib),
            lambda s: s.peak_rss_mib,
        ),
    ]
    return figures


def _median(values: Iterable[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_int(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def format_one(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.1f}"


def format_triple(values: tuple[float, float, float]) -> str:
    return " / ".join("n/a" if math.isnan(v) else f"{v:.1f}" for v in values)


def _ratio(mine: float, theirs: float) -> str:
    if math.isnan(mine) or math.isnan(theirs) or theirs == 0:
        return "n/a"
    return f"{mine / theirs:.2f}"
