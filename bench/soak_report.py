"""The soak's readings and what is made of them: the 15-s lines, the CSV, the summary and plot."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BENCH",
    "BROKER",
    "CSV_FIELDS",
    "Reading",
    "SoakResult",
    "append_csv",
    "csv_row",
    "line",
    "markdown",
    "plot",
    "slope_per_10_min",
    "write_csv_header",
]

BROKER = "broker"
BENCH = "bench"  # the bench's own process: simulators and readers
_OTHERS = (BROKER, BENCH)
MINUTE = 60.0
IDLE = 0.005  # CPU seconds in an interval below which a process is left out of the line


@dataclass(frozen=True)
class Reading:
    """One interval of one contender (or of the broker): counters at its end, CPU within it."""

    contender: str  # "pipeline", "direct loop", "broker" or "bench"
    seconds: float  # into the soak, at the end of the interval
    interval: float  # seconds the interval lasted
    cpu: float  # CPU seconds of the process tree within the interval
    rss_mib: float  # RSS of the process tree at the end
    python: float | None = None  # CPU seconds of threads that run Python (or anything not native)
    native: float | None = None  # CPU seconds of librdkafka's and RocksDB's threads
    sent: int | None = None  # trades the simulator sent so far
    source: int | None = None  # trades in the source topic so far (pipeline)
    output: int | None = None  # distinct trades in the output topic so far
    processes: dict[str, tuple[float, float]] = field(default_factory=dict)  # role: py, native
    threads: dict[str, float] = field(default_factory=dict)  # busiest native threads: seconds

    @property
    def per_minute(self) -> float:
        """CPU seconds per minute within the interval."""
        return self.cpu / self.interval * MINUTE if self.interval else math.nan


@dataclass
class SoakResult:
    """Everything a soak measured."""

    seconds: float
    rate: float
    batch: int
    pairs: tuple[str, ...]
    every: float
    machine_line: str
    external_broker: bool
    readings: list[Reading] = field(default_factory=list)
    delivery: dict[str, str] = field(default_factory=dict)  # contender -> verdict
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def of(self, contender: str) -> list[Reading]:
        return [r for r in self.readings if r.contender == contender]

    @property
    def contenders(self) -> list[str]:
        names = (r.contender for r in self.readings if r.contender not in _OTHERS)
        return list(dict.fromkeys(names))


# --- each interval ------------------------------------------------------------------------


def line(reading: Reading) -> str:
    """The progress line of one interval."""
    head = f"soak {reading.seconds:5.0f} s {reading.contender:<11}"
    cpu = f"CPU {reading.cpu:5.2f} s = {reading.per_minute:5.1f} s/min"
    if reading.contender in _OTHERS:
        return f"{head} {cpu}, RSS {reading.rss_mib:6.1f} MiB"
    counts = f"sent {reading.sent:>9,}"
    if reading.source is not None:
        counts += f", source topic {reading.source:>9,}"
    counts += f", output {reading.output:>9,}"
    split = f"python {_per_min(reading, reading.python):.1f} + native "
    split += f"{_per_min(reading, reading.native):.1f}"
    busy = {role: cpu for role, cpu in reading.processes.items() if sum(cpu) >= IDLE}
    if len(busy) > 1:
        split += " [" + ", ".join(
            f"{role} {_per_min(reading, py):.1f}+{_per_min(reading, nat):.1f}"
            for role, (py, nat) in busy.items()
        )
        split += "]"
    return f"{head} {counts}, RSS {reading.rss_mib:6.1f} MiB, {cpu} ({split})"


CSV_FIELDS = [
    "seconds",
    "contender",
    "interval_s",
    "sent",
    "source_trades",
    "output_distinct",
    "rss_mib",
    "cpu_s",
    "cpu_s_per_min",
    "python_s",
    "native_s",
    "processes",
    "native_threads",
]


def csv_row(reading: Reading) -> list[object]:
    """The reading as a row of `CSV_FIELDS` (per-process and per-thread splits as text)."""
    return [
        f"{reading.seconds:.1f}",
        reading.contender,
        f"{reading.interval:.2f}",
        _blank(reading.sent),
        _blank(reading.source),
        _blank(reading.output),
        f"{reading.rss_mib:.1f}",
        f"{reading.cpu:.3f}",
        f"{reading.per_minute:.2f}",
        _blank(reading.python, "{:.3f}"),
        _blank(reading.native, "{:.3f}"),
        " ".join(f"{role}:{py:.3f}/{nat:.3f}" for role, (py, nat) in reading.processes.items()),
        " ".join(f"{name}:{seconds:.3f}" for name, seconds in reading.threads.items()),
    ]


def write_csv_header(path: Path) -> None:
    """Start the CSV afresh with its header."""
    with path.open("w", newline="") as file:
        csv.writer(file).writerow(CSV_FIELDS)


def append_csv(path: Path, readings: Iterable[Reading]) -> None:
    """Add the readings of one interval (the file is reopened, so a crash loses nothing)."""
    with path.open("a", newline="") as file:
        csv.writer(file).writerows(csv_row(r) for r in readings)


# --- the summary --------------------------------------------------------------------------


def slope_per_10_min(readings: Sequence[Reading], value=lambda r: r.per_minute) -> float:
    """Least-squares slope of `value` (default CPU-s/min) against time, per 10 minutes."""
    points = [((r.seconds - r.interval / 2) / MINUTE, value(r)) for r in readings]
    if len(points) < 2:
        return math.nan
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return math.nan
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * 10


def _window(readings: Sequence[Reading], first: bool, end: float) -> list[Reading]:
    """The intervals of the first minute (starting before 60 s) or the last (ending after)."""
    if first:
        return [r for r in readings if r.seconds - r.interval < MINUTE - 1e-6]
    return [r for r in readings if r.seconds > end - MINUTE + 1e-6]


def _rate(readings: Sequence[Reading], seconds=lambda r: r.cpu) -> float:
    """CPU seconds per minute over several intervals."""
    span = sum(r.interval for r in readings)
    values = [seconds(r) for r in readings]
    if not span or any(v is None for v in values):
        return math.nan
    return sum(values) / span * MINUTE


def markdown(result: SoakResult, figure: str | None) -> str:
    """The report: setup, summary table, where the CPU goes, every interval, the figure."""
    end = result.readings[-1].seconds if result.readings else result.seconds
    columns = [*result.contenders, BROKER, BENCH]
    rows = [
        "| | " + " | ".join(columns) + " |",
        "| --- |" + " --: |" * len(columns),
    ]
    cells = {name: _summary_cells(result, name, end) for name in columns}
    labels = list(next(iter(cells.values())).keys()) if cells else []
    for label in labels:
        rows.append(f"| {label} | " + " | ".join(cells[name][label] for name in columns) + " |")
    broker = "external (not measured)" if result.external_broker else "embedded, measured"
    text = [
        f"Soak: the {' and the '.join(result.contenders)} side by side, each fed "
        f"{result.rate:,.0f} trades/s by its own Kraken simulator (frames of up to "
        f"{result.batch} trades, pairs {', '.join(result.pairs)}), for {result.seconds:,.0f} s, "
        f"each writing its own output topic on one broker ({broker}).",
        f"Machine: {result.machine_line}.",
        "",
        "CPU is user + system seconds of each process tree, split by thread: *native* is "
        "librdkafka's and RocksDB's own threads (`rdk:*`, `rocksdb:*`), *python* every other "
        "thread. The first minute is the intervals that start before 60 s, the last minute "
        "those that end in the last 60 s; the slope is a least-squares fit over all intervals. "
        "*bench* is the bench's own process (both simulators and the readers), which shares "
        "the machine.",
        "",
        *rows,
        "",
    ]
    text += _where_it_goes(result, end)
    text += _interval_table(result)
    if figure:
        text += [f"![CPU seconds per minute and RSS over the soak]({figure})", ""]
    if result.notes:
        text += ["Notes:", "", *(f"- {note}" for note in result.notes), ""]
    return "\n".join(text)


def _summary_cells(result: SoakResult, name: str, end: float) -> dict[str, str]:
    readings = result.of(name)
    if name == BROKER and result.external_broker:
        return dict.fromkeys(_SUMMARY_LABELS, "external")
    if not readings:
        return dict.fromkeys(_SUMMARY_LABELS, "")
    first, last = _window(readings, True, end), _window(readings, False, end)
    cells = {}
    for label, part in (("first", first), ("last", last)):
        total = _rate(part)
        if name in _OTHERS:
            cells[f"CPU-s/min, {label} minute"] = f"{total:.1f}"
            continue
        python, native = _rate(part, lambda r: r.python), _rate(part, lambda r: r.native)
        cells[f"CPU-s/min, {label} minute"] = f"{total:.1f} (py {python:.1f}, nat {native:.1f})"
    slope = slope_per_10_min(readings)
    if name in _OTHERS:
        cells["slope, CPU-s/min per 10 min"] = f"{slope:+.1f}"
    else:
        python = slope_per_10_min(readings, lambda r: r.python / r.interval * MINUTE)
        native = slope_per_10_min(readings, lambda r: r.native / r.interval * MINUTE)
        cells["slope, CPU-s/min per 10 min"] = f"{slope:+.1f} (py {python:+.1f}, nat {native:+.1f})"
    start_rss, end_rss = readings[0].rss_mib, readings[-1].rss_mib
    growth = (end_rss - start_rss) / start_rss * 100 if start_rss else math.nan
    cells["RSS first -> last (MiB)"] = f"{start_rss:.0f} -> {end_rss:.0f} ({growth:+.1f} %)"
    peak = result.peak_rss_mib.get(name)
    cells["peak RSS (MiB)"] = f"{peak:.0f}" if peak else ""
    cells["delivery"] = result.delivery.get(name, "")
    return cells


_SUMMARY_LABELS = (
    "CPU-s/min, first minute",
    "CPU-s/min, last minute",
    "slope, CPU-s/min per 10 min",
    "RSS first -> last (MiB)",
    "peak RSS (MiB)",
    "delivery",
)


def _where_it_goes(result: SoakResult, end: float) -> list[str]:
    """CPU-s/min by process and kind of thread, and the busiest native threads."""
    rows = ["| where (CPU-s/min) | first minute | last minute |", "| --- | --: | --: |"]
    for name in result.contenders:
        readings = result.of(name)
        first, last = _window(readings, True, end), _window(readings, False, end)
        roles = list(
            dict.fromkeys(
                role for r in readings for role, cpu in r.processes.items() if sum(cpu) >= IDLE
            )
        )
        for role in roles:
            for kind, index in (("python", 0), ("native", 1)):

                def part(r: Reading, role: str = role, index: int = index) -> float:
                    return r.processes.get(role, (0.0, 0.0))[index]

                rows.append(
                    f"| {name}: {role}, {kind} | {_rate(first, part):.1f} | "
                    f"{_rate(last, part):.1f} |"
                )
        names = {thread for r in last for thread in r.threads}
        busiest = sorted(names, key=lambda t: -_rate(last, lambda r: r.threads.get(t, 0.0)))
        for thread in busiest[:3]:

            def seconds(r: Reading, thread: str = thread) -> float:
                return r.threads.get(thread, 0.0)

            if _rate(last, seconds) < 0.05:
                continue

            rows.append(
                f"| {name}: thread {thread} | {_rate(first, seconds):.1f} | "
                f"{_rate(last, seconds):.1f} |"
            )
    return [*rows, ""]


def _interval_table(result: SoakResult) -> list[str]:
    """One row per interval: CPU-s/min of each, RSS and how far behind each output is."""
    names = result.contenders
    head = ["s"]
    for name in names:
        head += [f"{name} CPU-s/min (py + nat)", f"{name} RSS", f"{name} behind"]
    for other in _OTHERS:
        head += [f"{other} CPU-s/min", f"{other} RSS"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --: |" * len(head)]
    by_time: dict[float, dict[str, Reading]] = {}
    for reading in result.readings:
        by_time.setdefault(round(reading.seconds), {})[reading.contender] = reading
    for at, group in by_time.items():
        cells = [f"{at:,.0f}"]
        for name in names:
            r = group.get(name)
            if r is None:
                cells += ["", "", ""]
                continue
            cells += [
                f"{r.per_minute:.1f} ({_per_min(r, r.python):.1f} + {_per_min(r, r.native):.1f})",
                f"{r.rss_mib:.0f}",
                f"{(r.sent or 0) - (r.output or 0):,}",
            ]
        for other in _OTHERS:
            r = group.get(other)
            cells += [f"{r.per_minute:.1f}", f"{r.rss_mib:.0f}"] if r else ["-", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return [*rows, ""]


# --- the figure ---------------------------------------------------------------------------


def plot(result: SoakResult, path: Path) -> None:
    """CPU-s/min over time (pipeline total, python, native; direct loop; broker; bench), RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cpu, rss) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    styles = {
        "pipeline": "tab:blue",
        "direct loop": "tab:orange",
        BROKER: "tab:gray",
        BENCH: "tab:green",
    }
    for name in [*result.contenders, BROKER, BENCH]:
        readings = result.of(name)
        if not readings:
            continue
        minutes = [r.seconds / MINUTE for r in readings]
        color = styles.get(name)
        cpu.plot(minutes, [r.per_minute for r in readings], color=color, label=name, marker=".")
        if name == "pipeline":
            for kind, style in (("python", "--"), ("native", ":")):
                values = [_per_min(r, getattr(r, kind)) for r in readings]
                cpu.plot(minutes, values, color=color, linestyle=style, label=f"{name}, {kind}")
        rss.plot(minutes, [r.rss_mib for r in readings], color=color, label=name)
    cpu.set_ylabel("CPU-s per minute")
    cpu.set_title(f"Soak at {result.rate:,.0f} trades/s each")
    cpu.set_ylim(bottom=0)
    cpu.grid(alpha=0.3)
    cpu.legend(fontsize="small", ncol=2)
    rss.set_ylabel("RSS (MiB)")
    rss.set_xlabel("minutes into the soak")
    rss.set_ylim(bottom=0)
    rss.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _per_min(reading: Reading, seconds: float | None) -> float:
    if seconds is None or not reading.interval:
        return math.nan
    return seconds / reading.interval * MINUTE


def _blank(value: float | None, form: str = "{}") -> str:
    return "" if value is None else form.format(value)
