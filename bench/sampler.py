"""CPU time and memory of a contender's whole process tree (the pipeline is two processes)."""

from __future__ import annotations

import threading

import psutil

__all__ = ["TreeSampler"]

MIB = 1024 * 1024


class TreeSampler:
    """Samples a process and all its descendants every `interval` seconds with psutil.

    CPU is user + system seconds summed over the tree; a process that exits keeps the
    last value seen, so the total never goes down. RSS is summed over the processes alive
    at each sample; `peak_rss` is the largest such sum seen.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.last_rss = 0
        self._cpu: dict[int, float] = {}
        self._processes: dict[int, psutil.Process] = {pid: self.root}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def cpu_seconds(self) -> float:
        """CPU seconds used by the tree so far (sampled now)."""
        self.sample()
        with self._lock:
            return sum(self._cpu.values())

    def sample(self) -> None:
        """Take one sample of every process of the tree."""
        with self._lock:
            try:
                children = self.root.children(recursive=True)
            except psutil.Error:
                children = []
            rss = 0
            for child in children:
                self._processes.setdefault(child.pid, child)
            for pid, process in list(self._processes.items()):
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        memory = process.memory_info()
                except psutil.Error:
                    del self._processes[pid]
                    continue
                self._cpu[pid] = times.user + times.system
                rss += memory.rss
            self.last_rss = rss
            self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.sample()
