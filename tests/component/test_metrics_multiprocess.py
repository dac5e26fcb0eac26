"""Metrics of several processes: the multiprocess directory keeps the gauges of live processes
only, and `enable` starts a fresh one, with real processes started and ended (tests/unit/
test_metrics.py has the logic without them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sources.observability.multiproc import live_gauge_pids, reap_dead_processes


def test_gauges_of_ended_processes_are_removed(tmp_path: Path) -> None:
    dead = ended_pid()
    for name in (
        f"gauge_livemostrecent_{dead}.db",
        f"gauge_livemostrecent_{os.getpid()}.db",
        f"counter_{dead}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    assert live_gauge_pids(tmp_path) == {dead, os.getpid()}
    assert reap_dead_processes(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{dead}.db",  # counters of an ended process still count
        f"gauge_livemostrecent_{os.getpid()}.db",
    ]


ENABLE = """
import os
import prometheus_client  # imported before: enable() must still switch to multiprocess mode
from sources.observability.multiproc import ENV, enable
path = enable()
from sources.observability.metrics import DataframeMetrics
DataframeMetrics().output_records.inc(3)
print(path, os.environ[ENV], sorted(p.name for p in path.iterdir()))
"""


def test_enable_makes_a_fresh_directory_and_removes_those_of_killed_pipelines(
    tmp_path: Path,
) -> None:
    dead = ended_pid()
    orphan = tmp_path / f"kraken-metrics-{dead}-abc"
    orphan.mkdir()
    (orphan / "counter_1.db").write_bytes(b"")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    run = subprocess.run(
        [sys.executable, "-c", ENABLE], env=env, capture_output=True, text=True, check=True
    )
    path, env_path, files = run.stdout.split(" ", 2)
    assert path == env_path and Path(path).parent == tmp_path
    assert "counter_" in files  # the counter went to this process's file in the directory
    assert not orphan.exists()
    assert not Path(path).exists()  # removed at exit


def ended_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)
