"""Reading a topic with several processes: its partitions shared out, the audits merged.

The audit's per-record work is Python: one process reads at some 60 % of the rate of a
plain consumer that parses each record (see bench/audit.py). Partitions are Kafka's unit of
parallel reading: with `workers` N, this process reads one share of them and N - 1 spawned
processes (spawned, as Quix Streams spawns its sources) read the others, each into an audit
of its own (`TopicAudit.blank`), reporting progress through shared memory and sending its
audit back when done; `TopicAudit.merge` puts them together (a pair lives on one partition,
unless a wrong key sent some of its records elsewhere: see `SequenceLedger.merge`).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .accounting import TopicAudit
from .reader import BrokerError, ReadStats, TopicReader

__all__ = ["auto_workers", "available_cpus", "read_in_parallel", "share_out"]

logger = logging.getLogger(__name__)

POLL = 0.2  # seconds between two looks at the workers
READY_TIMEOUT = 60.0  # seconds the workers may take to start before this one reads anyway


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota (a
    container's `cpu` limit, e.g. Quix Cloud's 500 millicores: 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_quota()
    count = count or 1
    return max(1, min(count, math.ceil(quota)) if quota else count)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), None: no quota."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def auto_workers(partitions: int) -> int:
    """`workers=auto`: one reader a partition while there are at most twice as many
    partitions as CPUs (3 partitions on 2 CPUs: 3 readers, each a third of the records,
    rather than 2 of which one reads twice what the other does), else one a CPU; one
    reader on a single CPU."""
    cpus = available_cpus()
    if cpus == 1:
        return 1
    return partitions if partitions <= 2 * cpus else cpus


def share_out(partitions: list[int], workers: int) -> list[list[int]]:
    """The partitions dealt round-robin to at most `workers` readers, none empty."""
    count = max(1, min(workers, len(partitions)))
    return [partitions[i::count] for i in range(count)]


def read_in_parallel(
    reader: TopicReader,
    topic: str,
    groups: list[list[int]],
    audit: TopicAudit,
    *,
    loglevel: str = "INFO",
    progress: Callable[[int, int | None], None] | None = None,
) -> ReadStats:
    """Read the first group of partitions here and each other group in a process of its
    own; merge their audits into `audit` and their figures into the returned stats.

    :raises BrokerError: when a reader could not read (the first such error), or died.
    """
    context = multiprocessing.get_context("spawn")
    others = len(groups) - 1
    done = context.Array("q", others, lock=False)
    expected = context.Array("q", [-1] * others, lock=False)
    ready = context.Array("b", others, lock=False)
    shared = {"done": done, "expected": expected, "ready": ready}
    workers = _start_readers(context, reader, topic, groups[1:], audit, loglevel, shared)

    own_total: list[int | None] = [None]

    def together(records: int, total: int | None) -> None:
        """Progress of all readers: this one's and the shared counters of the others."""
        own_total[0] = total if total is not None else own_total[0]
        mine = own_total[0]
        if progress is not None:
            known = mine is not None and all(e >= 0 for e in expected)
            progress(records + sum(done), mine + sum(expected) if known else None)

    results: list[Any] = [None] * others
    try:
        _wait_until_ready(workers, ready)  # all read together: no one's start-up in the rate
        stats = reader.read_trades(topic, groups[0], audit, progress=together)
        while any(result is None for result in results):
            for index, (process, receive) in enumerate(workers):
                if results[index] is None:
                    results[index] = _result(process, receive, POLL / others)
            together(stats.records, None)
    finally:
        for process, receive in workers:
            receive.close()
            process.join(5)
            if process.is_alive():
                process.kill()
    stats.partitions = sum(len(g) for g in groups)
    for kind, value, part in results:
        if kind == "error":
            raise BrokerError(value)
        audit.merge(value)
        _combine(stats, part)
    return stats


def _start_readers(
    context: Any,
    reader: TopicReader,
    topic: str,
    groups: list[list[int]],
    audit: TopicAudit,
    loglevel: str,
    shared: dict[str, Any],
) -> list[tuple[Any, Connection]]:
    """A reader process for each group, auditing it into a blank copy of `audit`; (the
    process, the end of the pipe its result comes through) of each."""
    workers = []
    for index, group in enumerate(groups):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_work,
            args=(reader.config, reader.idle_timeout, topic, group, audit.blank(), loglevel),
            kwargs={**shared, "index": index, "send": send},
            name=f"audit-reader-{index + 1}",
            daemon=True,
        )
        process.start()
        send.close()
        workers.append((process, receive))
    return workers


def _wait_until_ready(workers: list[tuple[Any, Connection]], ready: Any) -> None:
    """Until every worker has started (imported, connected) or one has stopped."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(ready) and time.monotonic() < deadline:
        if any(not process.is_alive() for process, _ in workers):
            return  # its error comes with its result
        time.sleep(0.01)


def _result(process: Any, receive: Connection, wait: float) -> tuple | None:
    """A worker's answer when it has sent it; an error when it died without one."""
    if receive.poll(wait):
        try:
            return receive.recv()
        except EOFError:
            pass
    elif process.is_alive():
        return None
    return ("error", f"reader process {process.name} died (exit code {process.exitcode})", None)


def _combine(stats: ReadStats, part: ReadStats) -> None:
    stats.records += part.records
    if part.first_record_at is not None:
        stats.first_record_at = min(stats.first_record_at or math.inf, part.first_record_at)
        stats.last_record_at = max(stats.last_record_at or 0.0, part.last_record_at or 0.0)
    stats.start = stats.start or part.start
    reasons = [r for r in (stats.ended, part.ended) if r]
    stats.ended = ", ".join(dict.fromkeys(", ".join(reasons).split(", "))) if reasons else ""


def _work(
    config: dict[str, Any],
    idle_timeout: float,
    topic: str,
    partitions: list[int],
    audit: TopicAudit,
    loglevel: str,
    *,
    done: Any,
    expected: Any,
    ready: Any,
    index: int,
    send: Connection,
) -> None:
    """One worker: read `partitions` into `audit`, send it back (or the error)."""
    logging.basicConfig(level=loglevel, format="[%(asctime)s] [%(levelname)s] %(message)s")
    if loglevel != "DEBUG":
        logging.getLogger("audit.librdkafka").setLevel(logging.CRITICAL)

    def progress(records: int, total: int | None) -> None:
        done[index] = records
        expected[index] = total if total else -1

    try:
        reader = TopicReader(config, idle_timeout=idle_timeout)
        ready[index] = 1
        stats = reader.read_trades(topic, partitions, audit, progress=progress)
        send.send(("ok", audit, stats))
    except BrokerError as exc:
        send.send(("error", str(exc), None))
    except Exception as exc:  # whatever it is, the parent says it and exits 2
        logger.exception("Reader of partitions %s failed", partitions)
        send.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        send.close()
