"""prometheus_client's multiprocess mode: the shared directory and the processes writing to it.

The main process calls `enable()` before any metric exists and before Quix Streams spawns the
source's process, which inherits the environment variable and so writes its own file there.
This module does not import `prometheus_client` at import time.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["ENV", "enable", "enabled", "live_gauge_pids", "reap_dead_processes"]

logger = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "kraken-metrics-"  # + the pid of the process that made it
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def enabled() -> bool:
    """True in a process whose metrics go to a multiprocess directory (metrics are on)."""
    return bool(os.environ.get(ENV))


def enable() -> Path:
    """Make this process and the processes it starts from now on write metrics to one directory.

    The directory is the one `PROMETHEUS_MULTIPROC_DIR` already names (e.g. a volume), emptied
    of metric files first, or else a fresh temporary one removed at exit.
    """
    preset = os.environ.get(ENV)
    if preset:
        path = Path(preset)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):  # a previous run's values are not this run's
            old.unlink(missing_ok=True)
    else:
        owner = os.getpid()
        _remove_orphans(Path(tempfile.gettempdir()))
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{owner}-"))
        os.environ[ENV] = str(path)
        atexit.register(_remove, path, owner)
    _use_multiprocess_values()
    return path


def _use_multiprocess_values() -> None:
    """prometheus_client picks its value class when first imported: if something imported it
    before `enable()`, pick again (no metric may exist yet for this to be sound)."""
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


def _remove(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that inherited the atexit hook
        shutil.rmtree(path, ignore_errors=True)


def _remove_orphans(tmp: Path) -> None:
    """Remove the directories of pipelines that were killed (no atexit ran)."""
    for path in tmp.glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def live_gauge_pids(path: Path) -> set[int]:
    """The processes that have live-mode gauge files in `path`."""
    pids = set()
    for entry in os.listdir(path):
        match = _LIVE_GAUGE_FILE.match(entry)
        if match:
            pids.add(int(match.group(1)))
    return pids


def reap_dead_processes(path: Path) -> list[int]:
    """`mark_process_dead` every process whose live gauges are still there but which is gone
    (e.g. a source process that was killed): its gauges stop counting. Returns those pids."""
    from prometheus_client import multiprocess

    dead = [pid for pid in live_gauge_pids(path) if not _alive(pid)]
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # a concurrent scrape removed them first
            multiprocess.mark_process_dead(pid, str(path))
        logger.debug("Metrics of process %d removed: it has ended", pid)
    return dead


def _alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, ended but not yet reaped, counts as gone)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True
