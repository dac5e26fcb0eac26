"""The three contenders as processes the bench starts, loads and stops.

The pipeline and the direct loop read the Kraken simulator (running in the bench's process),
whose rate the bench sets; the ceiling has no WebSocket and takes its rate as a command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from bench.market import BenchMarket
from bench.reader import Arrival, OutputReader
from simulator import KrakenSimulator

__all__ = [
    "CONTENDERS",
    "Ceiling",
    "Contender",
    "DirectLoop",
    "Pipeline",
    "Target",
]

ROOT = Path(__file__).resolve().parents[1]
TRADES_MAIN = ROOT / "pipelines" / "trades" / "main.py"
WARM_UP_RATE = 100.0


@dataclass
class Target:
    """Where and how a contender writes, and what the simulator offers it."""

    broker: str
    topic: str
    pairs: tuple[str, ...]
    workdir: Path
    producer_config: dict = field(default_factory=dict)
    batch: int = 10  # most trades per Kraken frame
    flood_trades: int = 250_000  # records the ceiling prepares
    soak: bool = False  # long run: keep no send times and only recent market history


class Contender(ABC):
    """A process writing trades to `target.topic`, and the load offered to it."""

    name: str

    def __init__(self, target: Target) -> None:
        self.target = target
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = target.workdir / f"{self.name.replace(' ', '-')}.log"

    @abstractmethod
    def start(self) -> None:
        """Start the process (and what feeds it)."""

    @abstractmethod
    def offer(self, rate: float, seconds: float) -> None:
        """Offer `rate` trades/s for `seconds`, then nothing."""

    def prepare_flood(self, count: int) -> None:
        """Get `count` trades ready before the flood's clock starts (nothing by default)."""
        return None

    @abstractmethod
    def flood(self, count: int) -> None:
        """Offer `count` trades as fast as they are taken; may return before they are."""

    @abstractmethod
    def flood_done(self) -> bool:
        """True once every trade of the flood was offered."""

    @abstractmethod
    def offered(self) -> int:
        """Trades offered so far."""

    @abstractmethod
    def sent_ns(self, arrival: Arrival) -> int | None:
        """When the trade behind `arrival` was offered (epoch ns), if known."""

    def warm_up(self, reader: OutputReader, timeout: float) -> None:
        """Offer a trickle until records come out, so start-up is not measured."""
        deadline = time.monotonic() + timeout
        while reader.count == 0:
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no record within {timeout:g} s\n{self.log()}")
            self.offer(WARM_UP_RATE, 0.5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """The end of the process's output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-3000:]

    def _check_alive(self) -> None:
        if self.process and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode})\n{self.log()}")

    def _popen(self, args: list[str], env: dict[str, str], *, piped: bool = False) -> None:
        """`python <args>` in the work directory; stdin/stdout piped to the bench if `piped`."""
        environment = {
            **{k: v for k, v in os.environ.items() if not k.lower().startswith("quix__")},
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.target.workdir,
                env=environment,
                stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log,
                stderr=log,
            )


class _Simulated(Contender):
    """A contender fed by the Kraken simulator, which runs in the bench's process."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.market = BenchMarket(target.pairs, keep=10_000 if target.soak else None)
        self.sim = KrakenSimulator(
            self.market,
            rate=0,
            batch=target.batch,
            generate_when_idle=False,
            record_send_times=not target.soak,
        )

    def start(self) -> None:
        self.sim.start()
        self._start_process()

    @abstractmethod
    def _start_process(self) -> None: ...

    def offer(self, rate: float, seconds: float) -> None:
        self.sim.set_rate(rate)
        time.sleep(seconds)
        self.sim.set_rate(0)

    def prepare_flood(self, count: int) -> None:
        self.market.prepare(count)

    def flood(self, count: int) -> None:
        self.sim.max_trades = self.sim.trades_generated + count
        self.sim.set_rate(None)

    def flood_done(self) -> bool:
        """True once the simulator generated every trade of the flood."""
        limit = self.sim.max_trades
        return limit is not None and self.sim.trades_generated >= limit

    def offered(self) -> int:
        return self.sim.trades_sent

    def sent_ns(self, arrival: Arrival) -> int | None:
        return self.sim.send_times.get((arrival.pair, arrival.trade_id))

    def stop(self) -> None:
        super().stop()
        self.sim.stop()


class Pipeline(_Simulated):
    """`pipelines/trades/main.py` as shipped."""

    name = "pipeline"

    def _start_process(self) -> None:
        target = self.target
        env = {
            "Quix__Broker__Address": target.broker,
            "Quix__Consumer_Group": f"bench-{target.topic}",
            "output": target.topic,
            "pairs": ",".join(target.pairs),
            "kraken_ws_url": self.sim.ws_url,
            "kraken_rest_url": self.sim.rest_url,
            "embedded_broker": "never",
            "snapshot": "false",
            # served as shipped, on a port of its own (two runs, or a pipeline, may hold 9108)
            "metrics_port": str(_free_port()),
        }
        self._popen([str(TRADES_MAIN)], env)


class DirectLoop(_Simulated):
    """`bench/direct_loop.py`: websocket-client + orjson + confluent-kafka."""

    name = "direct loop"

    def _start_process(self) -> None:
        target = self.target
        args = [
            "-m",
            "bench.direct_loop",
            f"--broker={target.broker}",
            f"--topic={target.topic}",
            f"--ws-url={self.sim.ws_url}",
            f"--pairs={','.join(target.pairs)}",
            f"--producer-config={orjson.dumps(target.producer_config).decode()}",
        ]
        self._popen(args, {})


class Ceiling(Contender):
    """`bench/ceiling.py`: pre-serialized records straight into confluent-kafka."""

    name = "ceiling"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._offered = 0

    def start(self) -> None:
        target = self.target
        records = target.flood_trades + 100_000  # the flood, and the fixed rates before it
        args = [
            "-m",
            "bench.ceiling",
            f"--broker={target.broker}",
            f"--topic={target.topic}",
            f"--pairs={','.join(target.pairs)}",
            f"--records={records}",
            f"--producer-config={orjson.dumps(target.producer_config).decode()}",
        ]
        self._popen(args, {}, piped=True)
        self._expect("ready")

    def _command(self, line: str) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()
        self._offered = int(self._expect("done").split()[1])

    def _expect(self, word: str) -> str:
        assert self.process
        stdout: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        line = stdout.readline().decode()
        if not line.startswith(word):
            self._check_alive()
            raise RuntimeError(f"ceiling: expected {word!r}, got {line!r}\n{self.log()}")
        return line

    def offer(self, rate: float, seconds: float) -> None:
        self._command(f"rate {rate:g} {seconds:g}")

    def flood(self, count: int) -> None:
        self._command(f"flood {count}")

    def flood_done(self) -> bool:
        return True  # `flood` returns once everything is produced

    def offered(self) -> int:
        return self._offered

    def sent_ns(self, arrival: Arrival) -> int | None:
        return arrival.sent_ns

    def stop(self) -> None:
        if self.process and self.process.poll() is None and self.process.stdin:
            try:
                self.process.stdin.write(b"quit\n")
                self.process.stdin.close()
                self.process.wait(30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        super().stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONTENDERS: dict[str, type[Contender]] = {
    "pipeline": Pipeline,
    "direct": DirectLoop,
    "ceiling": Ceiling,
}
