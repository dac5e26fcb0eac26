"""`python -m bench --soak SECONDS`: the pipeline and the direct loop side by side, steadily.

Each contender reads its own Kraken simulator (same rate, same frames) and writes its own
output topic on the same broker. Every `every` seconds one line per contender, one for the
broker (when the bench started it) and one for the bench's own process go to stderr and to
`bench/results/soak.csv`: trades sent, in the pipeline's source topic and in each output
topic; RSS; and the CPU seconds of the interval, split into Python's and native threads
(`bench/threads.py`). Delivery is checked record by record in bounded memory
(`bench/delivery.py`). The summary, the Markdown report and the plot come from
`bench/soak_report.py`.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psutil

from bench.contenders import Contender, DirectLoop, Pipeline, Target
from bench.delivery import TradeSequence
from bench.reader import OutputReader
from bench.sampler import MIB, TreeSampler
from bench.scenario import create_output_topic
from bench.soak_report import (
    BENCH,
    BROKER,
    Reading,
    SoakResult,
    append_csv,
    line,
    markdown,
    plot,
    write_csv_header,
)
from bench.threads import ThreadCpu, TreeCpu

__all__ = ["SOAK_BATCH", "SOAK_EVERY", "SOAK_RATE", "run_soak"]

SOAK_RATE = 1_000.0  # trades/s offered to each contender
SOAK_BATCH = 5  # most trades per Kraken frame
SOAK_EVERY = 15.0  # seconds between readings
FETCH_WAIT_MS = 100  # the bench's readers: see OutputReader
WARM_UP_TIMEOUT = 90.0
CATCH_UP_TIMEOUT = 60.0
BUSIEST_THREADS = 4  # native threads named in each reading
IDLE = 0.005  # CPU seconds in an interval below which a thread is not named


def run_soak(
    target: Target,
    seconds: float,
    machine_line: str,
    results: Path,
    *,
    rate: float = SOAK_RATE,
    every: float = SOAK_EVERY,
    external_broker: bool = False,
) -> str:
    """Soak both contenders for `seconds`; write soak.csv, soak.png; return the report."""
    tag = uuid.uuid4().hex[:8]
    result = SoakResult(
        seconds=seconds,
        rate=rate,
        batch=target.batch,
        pairs=target.pairs,
        every=every,
        machine_line=machine_line,
        external_broker=external_broker,
    )
    broker = None if external_broker else _ProcessWatch.broker(target.broker)
    own = _ProcessWatch(BENCH, psutil.Process())
    if broker is None and not external_broker:
        result.notes.append("the embedded broker's process was not found: its CPU is missing")
    watched = [
        _Watched(Pipeline(replace(target, topic=f"bench-soak-pipeline-{tag}", soak=True))),
        _Watched(DirectLoop(replace(target, topic=f"bench-soak-direct-{tag}", soak=True))),
    ]
    csv_path = results / "soak.csv"
    write_csv_header(csv_path)
    try:
        for item in watched:
            item.start()
        for item in watched:
            item.warm_up()
        offering = [
            threading.Thread(target=item.contender.offer, args=(rate, seconds), daemon=True)
            for item in watched
        ]
        _progress(f"soak: {rate:,.0f} trades/s to each contender for {seconds:,.0f} s")
        started = time.monotonic()
        for item in [*watched, broker, own]:
            if item is not None:
                item.mark(0.0)
        for thread in offering:
            thread.start()
        at = 0.0
        while at < seconds - 1e-6:
            at = min(seconds, at + every)
            time.sleep(max(0.0, started + at - time.monotonic()))
            now = time.monotonic() - started
            readings = [item.read(now) for item in watched]
            if broker is not None:
                readings.append(broker.read(now))
            readings.append(own.read(now))
            for reading in readings:
                _progress(line(reading))
            result.readings += readings
            append_csv(csv_path, readings)
            for item in watched:
                item.check(result.notes)
        for thread in offering:
            thread.join()
        result.notes += _catch_up(watched)
    finally:
        for item in watched:
            item.stop()
    for item in watched:
        name = item.contender.name
        sent = item.contender.offered()
        result.delivery[name] = item.output.describe(sent)
        result.peak_rss_mib[name] = item.sampler.peak_rss / MIB if item.sampler else 0.0
        if item.source is not None:
            result.delivery[name] += f"; source topic: {item.source.describe(sent)}"
        for reader in item.readers:
            if reader.error:
                result.notes.append(f"{name}: reader of {reader.topic}: {reader.error}")
    for watch in (broker, own):
        if watch is not None:
            result.peak_rss_mib[watch.name] = watch.peak_rss / MIB
    figure = results / "soak.png"
    plot(result, figure)
    return markdown(result, figure.name)


class _Watched:
    """A contender under the soak: its readers, its delivery checks and its CPU counters."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        broker, topic = contender.target.broker, contender.target.topic
        self.output = TradeSequence()
        self.reader = OutputReader(
            broker, topic, keep=False, fetch_wait_ms=FETCH_WAIT_MS, on_batch=self.output.add_output
        )
        self.readers: list[OutputReader] = []  # those started
        self.source: TradeSequence | None = None
        if isinstance(contender, Pipeline):  # the topic between its source and its dataframe
            self.source = TradeSequence()
            self.source_topic = f"source__kraken-{topic}"
        self.sampler: TreeSampler | None = None
        self.threads: ThreadCpu | None = None
        self._last: tuple[float, TreeCpu] | None = None
        self._exited = False

    def start(self) -> None:
        create_output_topic(self.contender.target.broker, self.contender.target.topic)
        self.reader.start(wait=False)
        self.readers.append(self.reader)
        self.contender.start()
        assert self.contender.process is not None
        pid = self.contender.process.pid
        self.sampler = TreeSampler(pid, interval=1.0).start()
        self.threads = ThreadCpu(pid, "dataframe" if self.source is not None else "main")

    def warm_up(self) -> None:
        """Records out of the output topic; then the source topic exists and can be read."""
        self.reader.wait_assigned()
        self.contender.warm_up(self.reader, WARM_UP_TIMEOUT)
        if self.source is not None:
            broker = self.contender.target.broker
            source = OutputReader(
                broker,
                self.source_topic,
                keep=False,
                fetch_wait_ms=FETCH_WAIT_MS,
                on_batch=self.source.add_source,
            )
            source.start()
            self.readers.append(source)

    def mark(self, seconds: float) -> None:
        """Start the first interval now."""
        assert self.threads is not None
        self._last = (seconds, self.threads.read())

    def read(self, seconds: float) -> Reading:
        """The interval since the last reading."""
        assert self.threads and self.sampler and self._last
        then, before = self._last
        now = self.threads.read()
        self._last = (seconds, now)
        self.sampler.sample()
        processes = {}
        for role, (py, nat) in now.by_process.items():
            py_before, nat_before = before.by_process.get(role, (0.0, 0.0))
            processes[role] = (py - py_before, nat - nat_before)
        threads = {
            name: value - before.by_thread.get(name, 0.0) for name, value in now.by_thread.items()
        }
        busiest = sorted(threads.items(), key=lambda item: -item[1])[:BUSIEST_THREADS]
        busiest = [(name, seconds) for name, seconds in busiest if seconds >= IDLE]
        return Reading(
            contender=self.contender.name,
            seconds=seconds,
            interval=seconds - then,
            cpu=now.total - before.total,
            rss_mib=self.sampler.last_rss / MIB,
            python=now.python - before.python,
            native=now.native - before.native,
            sent=self.contender.offered(),
            source=self.source.trades if self.source is not None else None,
            output=self.output.distinct,
            processes=processes,
            threads=dict(busiest),
        )

    def check(self, notes: list[str]) -> None:
        """Note once that the contender's process ended."""
        process = self.contender.process
        if not self._exited and process is not None and process.poll() is not None:
            self._exited = True
            notes.append(
                f"{self.contender.name} exited ({process.returncode}):\n{self.contender.log()}"
            )
            _progress(f"soak: {notes[-1]}")

    def caught_up(self) -> bool:
        sent = self.contender.offered()
        return self.output.distinct >= sent

    def stop(self) -> None:
        self.contender.stop()
        if self.sampler:
            self.sampler.stop()
        for reader in self.readers:
            reader.stop()


class _ProcessWatch:
    """CPU and RSS of one process: the embedded broker, or the bench itself."""

    def __init__(self, name: str, process: psutil.Process) -> None:
        self.name = name
        self.process = process
        self.peak_rss = 0
        self._last = (0.0, 0.0)

    @classmethod
    def broker(cls, address: str) -> _ProcessWatch | None:
        """The embedded Tansu: the child process of the bench that listens on `address`."""
        for child in psutil.Process().children(recursive=True):
            try:
                if any(f"tcp://{address}" in part for part in child.cmdline()):
                    return cls(BROKER, child)
            except psutil.Error:
                continue
        return None

    def mark(self, seconds: float) -> None:
        self._last = (seconds, self._cpu())

    def read(self, seconds: float) -> Reading:
        then, before = self._last
        cpu = self._cpu()
        self._last = (seconds, cpu)
        try:
            rss = self.process.memory_info().rss
        except psutil.Error:
            rss = 0
        self.peak_rss = max(self.peak_rss, rss)
        return Reading(self.name, seconds, seconds - then, cpu - before, rss / MIB)

    def _cpu(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.Error:
            return self._last[1]
        return times.user + times.system


def _catch_up(watched: list[_Watched]) -> list[str]:
    """Wait until every output holds every trade sent; notes on those that did not in time."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while not all(item.caught_up() for item in watched) and time.monotonic() < deadline:
        time.sleep(0.2)
    notes = [
        f"{item.contender.name}: {item.output.distinct:,} of {item.contender.offered():,} "
        f"trades in its output {CATCH_UP_TIMEOUT:g} s after the soak ended"
        for item in watched
        if not item.caught_up()
    ]
    for note in notes:
        _progress(f"soak: {note}")
    return notes


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
