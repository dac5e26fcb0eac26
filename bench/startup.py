"""`python -m bench --startup`: from `python pipelines/trades/main.py` to the first trade written.

Each round starts the pipeline on new topics (a new output topic, consumer group and state:
it creates every topic), stops it once a trade is written, and starts it again on what it
made (existing topics, its state recovered from its changelogs). The bench notes when it
started the process and when its reader (no consumer group: it reads every partition from
its start as soon as the topic exists) received the first record; the steps in between are
the timestamps of the pipeline's own log lines that mark them (`STEPS`). Each figure is the
median over the rounds of the seconds from the start of the process to that step.
"""

from __future__ import annotations

import math
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from bench.contenders import Contender, Pipeline, Target
from bench.reader import OutputReader
from bench.report import format_one

__all__ = ["STEPS", "StartupResult", "run_startup", "startup_markdown", "step_times"]

STARTUP_RUNS = 5
STARTUP_RATE = 200.0  # trades/s offered while the pipeline starts: a trade every 5 ms
FIRST_TRADE_TIMEOUT = 60.0
SETTLE = 0.5  # seconds without a new record before the next start (the last run's tail)

# Each step's log line (a regular expression searched in the pipeline's log). The consumer
# group's join ends at the assignment, where Quix Streams starts the source ("Starting source
# <name>", from the application's process); the source's process may be spawned, and its
# state recovered, before that (the quick start spawns it with the join).
STEPS: tuple[tuple[str, str], ...] = (
    ("settings read (Python, imports)", r"\] Starting: \d+ pairs? "),
    ("topics created or checked, output-tail seeds read", r"Starting the Application with"),
    ("source process running (spawned, imports)", r"\] : Starting source$"),
    ("source's state recovered", r"\] : Source started$"),
    ("group joined: partitions assigned, source let go", r"\[quixstreams\] : Starting source \S"),
    ("local state found ahead of its changelog (rebuilt)", r"Local state is ahead of its"),
    ("dataframe's state recovered (when it had to)", r"\[quixstreams\] : Recovery process com"),
    ("subscribed to Kraken", r"\] Subscribed to \S+ trades|\] : Subscribed to \S+ trades"),
)
FIRST_TRADE = "first trade written (the bench's reader has it)"

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


@dataclass
class StartupResult:
    """One start: the seconds from the process start to each step reached."""

    case: str  # "new topics" or "existing topics"
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.steps.get(FIRST_TRADE, math.nan)


def step_times(log: str, started: float, first_trade: float) -> dict[str, float]:
    """Seconds from `started` to each step's log line in `log` (epoch seconds).

    A step logged more than once (the group joined again after an in-process restart; a
    subscription per pair) counts at its last line before the first trade (`first_trade`),
    else at its first line. Log times are local wall-clock times to the millisecond (the
    pipeline's and Quix Streams' format, `[2026-12-07 01:27:32,986] ...`).
    """
    found: dict[str, float] = {}
    patterns = [(name, re.compile(pattern)) for name, pattern in STEPS]
    for line in log.splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            continue
        for name, pattern in patterns:
            if pattern.search(line):
                moment = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if name not in found or moment <= first_trade:
                    found[name] = moment
    return {name: moment - started for name, moment in found.items()}


def run_startup(
    target: Target,
    *,
    runs: int = STARTUP_RUNS,
    progress: Callable[[str], None] = print,
) -> list[StartupResult]:
    """`runs` rounds of a start on new topics, then a restart on them."""
    results: list[StartupResult] = []
    for run in range(1, runs + 1):
        round_target = replace(target, topic=f"bench-start-{uuid.uuid4().hex[:8]}")
        contender = Pipeline(round_target)
        reader = OutputReader(round_target.broker, round_target.topic, assign=True)
        reader.start(wait=False)
        contender.sim.start()
        contender.sim.set_rate(STARTUP_RATE)
        try:
            for case in ("new topics", "existing topics"):
                started = time.time()
                contender._start_process()
                result = _measure(contender, reader, case, started)
                Contender.stop(contender)  # SIGTERM, as a deployment does; the simulator goes on
                _settle(reader)
                results.append(result)
                progress(
                    f"start-up, round {run}/{runs}, {case}: first trade after {result.total:.2f} s"
                )
        finally:
            contender.stop()
            reader.stop()
    return results


def _measure(contender: Pipeline, reader: OutputReader, case: str, started: float) -> StartupResult:
    """Wait for the first record after `started`; read the steps from the log."""
    deadline = time.monotonic() + FIRST_TRADE_TIMEOUT
    since_ns = int(started * 1e9)
    while (first := reader.first_arrival_after(since_ns)) is None:
        contender._check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"no trade within {FIRST_TRADE_TIMEOUT:g} s\n{contender.log()}")
        time.sleep(0.005)
    time.sleep(1.0)  # lines written meanwhile (a subscription of the second pair, say)
    log = contender.log_path.read_text(errors="replace")
    steps = step_times(log, started, first / 1e9)
    steps[FIRST_TRADE] = first / 1e9 - started
    return StartupResult(case, steps)


def _settle(reader: OutputReader) -> None:
    """Wait until the reader has everything written so far (no record for `SETTLE` s)."""
    count = -1
    while reader.count != count:
        count = reader.count
        time.sleep(SETTLE)


def startup_markdown(results: list[StartupResult], *, machine_line: str | None = None) -> str:
    """The start-up table: the median time from the start to each step, per case."""
    cases = list(dict.fromkeys(r.case for r in results))
    names = [name for name, _ in STEPS] + [FIRST_TRADE]
    rows = []
    for name in names:
        cells = []
        for case in cases:
            values = [r.steps[name] for r in results if r.case == case and name in r.steps]
            cells.append(format_one(statistics.median(values)) if values else "-")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    runs = len(results) // max(1, len(cases))
    return "\n".join(
        [
            f"Start-up: medians of {runs} rounds, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; seconds from the start of "
            "`python pipelines/trades/main.py` until each step (from the log's timestamps; the "
            "source's process spawns with the consumer group's join, its source starts once the "
            "join is over). A round starts the pipeline "
            "on new topics, stops it after its first trade (SIGTERM), and starts it again on "
            "them.",
            *([f"Machine: {machine_line}."] if machine_line else []),
            "",
            "| step reached (s after the start) | " + " | ".join(cases) + " |",
            "| --- |" + " --: |" * len(cases),
            *rows,
            "",
        ]
    )
