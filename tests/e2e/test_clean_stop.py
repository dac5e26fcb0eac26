"""Clean stops: the embedded broker outlives the pipeline, and never its parent.

- Tansu runs in a session of its own, so a terminal's Ctrl-C (SIGINT to the foreground
  process group) does not reach it before the pipeline has stopped.
- Killing its parent outright (SIGKILL) leaves no Tansu behind (Linux parent-death signal).
- The demo (`make demo`) stops on Ctrl-C or SIGTERM in order: pipeline (flushed, exit 0),
  broker, simulator; promptly, with at most a line or two of errors, leaving no process.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sources.broker import EmbeddedBroker
from tests.support.kafka import free_port
from tests.support.repo import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")

TRADE_LINE = re.compile(r"#\d+\s+(buy|sell)\s")
BROKER_LINE = re.compile(r"^broker \S+", re.MULTILINE)
# What counts as an error in the log: librdkafka's and Quix Streams' complaints included.
ERROR_LINE = re.compile(
    r"\berror\b|exception|traceback|refused|brokers are down|\bfail(ed|ure)?\b", re.IGNORECASE
)
STOP_WITHIN = 15.0  # seconds from the signal to the demo's exit
MAX_ERROR_LINES = 2
STARTUP_TIMEOUT = 120.0  # seconds until the demo prints trades (a loaded CI machine)
TANSU_GONE_WITHIN = 5.0


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until none of `processes` runs; those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in processes if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _describe(processes: list[psutil.Process]) -> list[str]:
    described = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
    return described


def _is_tansu(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "tansu" in process.name()
    return False


class Demo:
    """`python -m simulator.demo` in its own process group, its output in a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "KAFKA_BROKER_ADDRESS" and not k.lower().startswith("quix__")
        }
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "simulator.demo"],
                cwd=ROOT,
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # like a shell job: its own process group
            )
        self.descendants: list[psutil.Process] = []

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.log):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo never printed {pattern.pattern!r}:\n{self.log}")
            time.sleep(0.2)

    def snapshot(self) -> list[psutil.Process]:
        """Every process the demo started (broker, pipeline, its source process...)."""
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)
        return self.descendants

    def kill_all(self) -> None:
        """Clean-up whatever is left: the demo's group, then each process it started (the
        whole group of those that lead one, like the pipeline and its source process)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for process in self.descendants:
            if not _alive(process):
                continue
            with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                if os.getpgid(process.pid) == process.pid:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    started = Demo(tmp_path / "demo.log")
    try:
        yield started
    finally:
        started.kill_all()


def test_the_broker_runs_in_a_session_of_its_own() -> None:
    with EmbeddedBroker(port=free_port()) as broker:
        assert broker.process is not None
        tansu = broker.process.pid
        assert os.getsid(tansu) != os.getsid(0), "Tansu shares this process's session"
        assert os.getpgid(tansu) != os.getpgid(0), "Ctrl-C here would reach Tansu too"


def test_sigkill_of_its_parent_leaves_no_tansu() -> None:
    script = (
        "import sys, time\n"
        "from sources.broker import EmbeddedBroker\n"
        f"broker = EmbeddedBroker(port={free_port()}).start()\n"
        "print(broker.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    tansu: psutil.Process | None = None
    try:
        assert parent.stdout is not None
        tansu = psutil.Process(int(parent.stdout.readline()))
        assert _is_tansu(tansu) and _alive(tansu)
        parent.kill()
        parent.wait()
        assert not _wait_gone([tansu], TANSU_GONE_WITHIN), "Tansu outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()
        if tansu is not None and _alive(tansu):
            tansu.kill()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_demo_stops_cleanly(demo: Demo, how: str) -> None:
    """Ctrl-C (SIGINT to the demo's whole process group) or SIGTERM (to the demo alone)."""
    demo.wait_for(TRADE_LINE, STARTUP_TIMEOUT)
    started = demo.snapshot()
    tansu = [p for p in started if _is_tansu(p)]
    assert tansu, f"no Tansu among the demo's processes: {_describe(started)}"
    before = len(demo.log_path.read_bytes())

    signalled = time.monotonic()
    if how == "ctrl-c":
        os.killpg(demo.process.pid, signal.SIGINT)
    else:
        demo.process.send_signal(signal.SIGTERM)
    try:
        code = demo.process.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"the demo did not stop within {STOP_WITHIN:g} s:\n{demo.log}"
        ) from None
    took = time.monotonic() - signalled

    after = demo.log_path.read_bytes()[before:].decode(errors="replace")
    errors = [line for line in after.splitlines() if ERROR_LINE.search(line)]
    assert code == 0, f"exit code {code}; after the signal:\n{after}"
    assert len(errors) <= MAX_ERROR_LINES, f"{len(errors)} error lines after the signal:\n{after}"
    order = ["Pipeline stopped (exit code 0)", "Stopping the broker", "Stopping the simulator"]
    positions = [after.find(step) for step in order]
    assert -1 not in positions and positions == sorted(positions), f"stop order:\n{after}"
    assert not _wait_gone(tansu, TANSU_GONE_WITHIN), "Tansu is still running"
    left = _wait_gone(started, TANSU_GONE_WITHIN)
    assert not left, f"left running: {_describe(left)}"
    assert took < STOP_WITHIN


def test_sigkill_of_the_demo_leaves_no_tansu(demo: Demo) -> None:
    demo.wait_for(BROKER_LINE, STARTUP_TIMEOUT)  # printed once the broker listens
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "main.py" not in " ".join(_describe(demo.snapshot())):  # the pipeline is started
        assert time.monotonic() < deadline, "the demo never started the pipeline"
        time.sleep(0.05)
    tansu = [p for p in demo.descendants if _is_tansu(p)]
    assert tansu, f"no Tansu among the demo's processes: {_describe(demo.descendants)}"
    demo.process.kill()
    demo.process.wait()
    assert not _wait_gone(tansu, TANSU_GONE_WITHIN), "Tansu outlived the SIGKILLed demo"
