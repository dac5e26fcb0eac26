"""Run a pipeline entry script as a real process, as users do, and read its log."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.repo import ROOT

TRADES_MAIN = ROOT / "pipelines" / "trades" / "main.py"
CANDLES_MAIN = ROOT / "pipelines" / "candles" / "main.py"
# What Quix Streams logs once an application runs (its topics exist: a consumer can subscribe).
STARTED = r"The application started and is now processing"


class PipelineProcess:
    """`python <script>` with the given variables, its log captured to a file in `workdir`."""

    def __init__(self, script: Path, env: dict[str, str], workdir: Path) -> None:
        self.script = script
        self.workdir = workdir
        self.log_path = workdir / f"{script.parent.name}-{time.monotonic_ns()}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.lower().startswith("quix__")},
            "embedded_broker": "never",
            "stats_interval": "2",
            "metrics_port": "0",  # tests that scrape set a free port
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PipelineProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(self.script)],
            cwd=self.workdir,  # Quix Streams keeps its state/ folder here
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the source's process included
        )
        log.close()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the log matches `pattern` (a regex); fail with the log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log)
            if match:
                return match
            if self.process and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"log never matched {pattern!r}; log:\n{self.log[-4000:]}")

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` and wait for the exit code (killing it if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                message = f"did not stop within {timeout} s; log:\n{self.log[-4000:]}"
                raise AssertionError(message) from None
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (the app and its source process), like a crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> PipelineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
