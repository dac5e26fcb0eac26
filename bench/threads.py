"""CPU seconds of a process tree per thread, from /proc: Python's threads vs native ones.

py-spy and psutil's process totals hide where a process spends its CPU: librdkafka and
RocksDB run threads of their own (named `rdk:*` and `rocksdb:*`) that no Python profiler
sees. This reads `/proc/<pid>/task/<tid>/stat` of every process of a tree and sorts each
thread's user + system time by its name. Linux only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["NATIVE_PREFIXES", "ThreadCpu", "TreeCpu", "is_native"]

NATIVE_PREFIXES = ("rdk:", "rocksdb:")  # librdkafka's and RocksDB's own threads
_TICK = os.sysconf("SC_CLK_TCK")


def is_native(name: str) -> bool:
    """True for a thread that librdkafka or RocksDB started (Python never runs on it)."""
    return name.startswith(NATIVE_PREFIXES)


@dataclass
class TreeCpu:
    """Cumulative CPU seconds of a process tree, as read at one moment."""

    python: float = 0.0  # every thread that is not native: the interpreter's threads
    native: float = 0.0
    by_process: dict[str, tuple[float, float]] = field(default_factory=dict)  # role -> py, nat
    by_thread: dict[str, float] = field(default_factory=dict)  # "role/name" -> native seconds

    @property
    def total(self) -> float:
        return self.python + self.native


class ThreadCpu:
    """Reads the CPU seconds of a process and its descendants, split by kind of thread.

    Counters never go down: a thread or process that ends keeps the last value read. Each
    process's total comes from `/proc/<pid>/stat` (which includes its ended threads); its
    native part is the sum over its `rdk:`/`rocksdb:` threads, the rest is Python's.
    Processes are named by role: `root` for the root, `source` for a process Quix Streams
    spawns for a source, `tracker` for multiprocessing's resource tracker, else their name.
    """

    def __init__(self, pid: int, root: str = "main") -> None:
        self.root = psutil.Process(pid)
        self._processes: dict[int, _Process] = {pid: _Process(pid, root)}

    def read(self) -> TreeCpu:
        """The counters now."""
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in self._processes:
                self._processes[child.pid] = _Process(child.pid, _role(child))
        result = TreeCpu()
        for process in self._processes.values():
            process.update()
            python, native = process.total - process.native, process.native
            previous = result.by_process.get(process.role, (0.0, 0.0))
            result.by_process[process.role] = (previous[0] + python, previous[1] + native)
            result.python += python
            result.native += native
            for name, seconds in process.native_threads().items():
                key = f"{process.role}/{name}"
                result.by_thread[key] = result.by_thread.get(key, 0.0) + seconds
        return result


class _Process:
    """One process's counters; the threads it had are folded in once they end."""

    def __init__(self, pid: int, role: str) -> None:
        self.pid = pid
        self.role = role
        self.total = 0.0
        self.alive = True
        self._threads: dict[int, tuple[str, float]] = {}  # live native tid -> name, seconds
        self._ended: dict[str, float] = {}  # name -> seconds of native threads that ended

    @property
    def native(self) -> float:
        return sum(s for _, s in self._threads.values()) + sum(self._ended.values())

    def native_threads(self) -> dict[str, float]:
        """Native seconds by thread name (threads of the same name added up)."""
        result = dict(self._ended)
        for name, seconds in self._threads.values():
            result[name] = result.get(name, 0.0) + seconds
        return result

    def update(self) -> None:
        if not self.alive:
            return
        base = Path(f"/proc/{self.pid}")
        stat = _read_stat(base / "stat")
        if stat is None:
            self.alive = False
            self._fold(set())
            return
        self.total = max(self.total, stat[1])
        seen: set[int] = set()
        try:
            tids = [int(entry.name) for entry in os.scandir(base / "task")]
        except OSError:
            tids = []
        for tid in tids:
            thread = _read_stat(base / "task" / str(tid) / "stat")
            if thread is None or not is_native(thread[0]):
                continue
            seen.add(tid)
            self._threads[tid] = thread
        self._fold(seen)

    def _fold(self, alive: set[int]) -> None:
        for tid in [tid for tid in self._threads if tid not in alive]:
            name, seconds = self._threads.pop(tid)
            self._ended[name] = self._ended.get(name, 0.0) + seconds


def _read_stat(path: Path) -> tuple[str, float] | None:
    """(comm, user + system seconds) of a `stat` file; None once the process or thread is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    open_, close = text.find("("), text.rfind(")")
    fields = text[close + 2 :].split()  # fields from the 3rd on: state, ppid, ...
    return text[open_ + 1 : close], (int(fields[11]) + int(fields[12])) / _TICK


def _role(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
        name = process.name()
    except psutil.Error:
        return "child"
    if "resource_tracker" in command:
        return "tracker"
    if "spawn_main" in command:
        return "source"
    return name
