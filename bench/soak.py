"""`python -m bench --soak SECONDS`: does the pipeline's memory stay flat at 1,000 trades/s?"""

from __future__ import annotations

import sys
import threading
import time
import uuid

from bench.contenders import Pipeline, Target
from bench.reader import OutputReader
from bench.sampler import MIB, TreeSampler
from bench.scenario import create_output_topic

__all__ = ["run_soak"]

SOAK_RATE = 1_000.0
POINTS = 10  # RSS readings reported along the way


def run_soak(target: Target, seconds: float, machine_line: str) -> str:
    """Run the pipeline at `SOAK_RATE` for `seconds`; report its RSS from start to end."""
    target.topic = f"bench-soak-{uuid.uuid4().hex[:8]}"
    target.soak = True
    create_output_topic(target.broker, target.topic)
    reader = OutputReader(target.broker, target.topic, keep=False, fetch_wait_ms=100).start()
    pipeline = Pipeline(target)
    readings: list[tuple[float, float]] = []  # (seconds into the soak, RSS MiB)
    try:
        pipeline.start()
        assert pipeline.process is not None
        sampler = TreeSampler(pipeline.process.pid, interval=1.0).start()
        pipeline.warm_up(reader, timeout=90)
        offering = threading.Thread(target=pipeline.offer, args=(SOAK_RATE, seconds))
        started = time.monotonic()
        offering.start()
        for point in range(1, POINTS + 1):
            time.sleep(max(0.0, started + seconds * point / POINTS - time.monotonic()))
            sampler.sample()
            readings.append((time.monotonic() - started, sampler.last_rss / MIB))
            print(f"soak: {readings[-1][0]:.0f} s, RSS {readings[-1][1]:.1f} MiB", file=sys.stderr)
        offering.join()
        caught_up = reader.wait_for(pipeline.offered(), 30)
        sampler.stop()
    finally:
        pipeline.stop()
        reader.stop()
    start, end = readings[0][1], readings[-1][1]
    growth = (end - start) / start * 100
    middle = readings[len(readings) // 2 - 1]
    late_growth = (end - middle[1]) / middle[1] * 100  # ~0 once warm-up allocations are done
    table = "\n".join(
        ["| seconds | RSS (MiB) |", "| --: | --: |"]
        + [f"| {at:,.0f} | {rss:.1f} |" for at, rss in readings]
    )
    return "\n".join(
        [
            f"Soak: the pipeline at {SOAK_RATE:,.0f} trades/s for {seconds:,.0f} s.",
            f"Machine: {machine_line}.",
            "",
            f"RSS of the process tree: {start:.1f} MiB at {readings[0][0]:.0f} s, "
            f"{end:.1f} MiB at the end: growth {growth:+.1f} % "
            f"(peak {sampler.peak_rss / MIB:.1f} MiB); over the second half, from "
            f"{middle[0]:.0f} s: {late_growth:+.1f} %.",
            f"Delivered {reader.count:,} of {pipeline.offered():,} trades offered"
            + ("." if caught_up else " (it did not catch up)."),
            "",
            table,
            "",
        ]
    )
