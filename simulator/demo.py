"""`python -m simulator.demo`: the whole pipeline offline, printing what reaches the topic.

Starts the Kraken simulator, a broker (Tansu in memory, or the one in `KAFKA_BROKER_ADDRESS`)
and `pipelines/trades/main.py` against both; then prints the output topic until Ctrl-C,
SIGTERM (or `--seconds`).

Stopping goes in order: the pipeline first (it gets SIGTERM, flushes and exits 0), then the
broker, then the simulator, so that nothing logs about a peer that went away. The pipeline and
the broker run in sessions of their own: only this process decides when they stop. If this
process is killed outright, the kernel kills the broker and sends the pipeline SIGTERM (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import orjson
from confluent_kafka import Consumer

from sources.broker import EmbeddedBroker, die_with_parent

from .market import Market
from .server import KrakenSimulator

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_STOP_TIMEOUT = 20.0  # seconds the pipeline may take to stop before it is killed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_on_signals() -> threading.Event:
    """An event that SIGINT, SIGTERM and SIGHUP (a closed terminal) set instead of ending this
    process at once: the stop is then done in order."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
    return stop


def main() -> int:
    """Run the demo until a signal or `--seconds`; 0 when the pipeline stopped cleanly."""
    parser = argparse.ArgumentParser(description="Offline demo of the trades pipeline")
    parser.add_argument("--pairs", default="BTC/USD,ETH/USD")
    parser.add_argument("--rate", type=float, default=4.0, help="trades/s across pairs")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = parser.parse_args()
    stop = _stop_on_signals()
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    market = Market(pairs, seed=1)
    market.seed_history(count_per_pair=200, span_seconds=600)

    exit_code = 0
    with contextlib.ExitStack() as stack:
        # Started first, stopped last: the simulator, then the broker, then the pipeline.
        kraken = stack.enter_context(KrakenSimulator(market, rate=args.rate, batch=2))
        stack.callback(_say, "Stopping the simulator")
        broker = os.environ.get("KAFKA_BROKER_ADDRESS")
        if not broker:
            broker = stack.enter_context(EmbeddedBroker(port=_free_port())).address
            stack.callback(_say, "Stopping the broker")
        topic = f"demo-trades-{uuid.uuid4().hex[:6]}"
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        env = {
            **os.environ,
            "Quix__Broker__Address": broker,
            "output": topic,
            "pairs": ",".join(pairs),
            "kraken_ws_url": kraken.ws_url,
            "kraken_rest_url": kraken.rest_url,
            "embedded_broker": "never",
            "stats_interval": "10",
        }
        print(f"broker {broker}  simulator {kraken.ws_url}  topic {topic}", flush=True)
        pipeline = subprocess.Popen(
            [sys.executable, str(ROOT / "pipelines" / "trades" / "main.py")],
            env=env,
            cwd=workdir,
            start_new_session=True,  # Ctrl-C reaches this process only: it stops the pipeline
            # If this process is killed outright: SIGTERM, so that it also stops its source
            # process (it then waits on the broker, which is gone, up to librdkafka's timeouts).
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        try:
            _print_topic(broker, topic, args.seconds, lambda: stop.is_set() or _exited(pipeline))
        finally:
            exit_code = _stop(pipeline)
    return exit_code


def _exited(pipeline: subprocess.Popen[bytes]) -> bool:
    if pipeline.poll() is None:
        return False
    _say(f"The pipeline exited on its own (code {pipeline.returncode})")
    return True


def _print_topic(broker: str, topic: str, seconds: float, done: Callable[[], bool]) -> None:
    """Print each record of `topic` until `done()` or `seconds` (0: no limit) have passed."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"demo-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 2000,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + seconds if seconds else float("inf")
    try:
        while time.monotonic() < deadline and not done():
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            record = orjson.loads(message.value())
            print(
                f"{message.key().decode():>9} #{record['trade_id']:<8} {record['side']:>4} "
                f"{record['volume']:>12.8f} @ {record['price']:<12} {record['timestamp']}",
                flush=True,
            )
    finally:
        consumer.close()


def _stop(pipeline: subprocess.Popen[bytes]) -> int:
    """SIGTERM the pipeline and wait for it (killing its process group if it hangs).

    :returns: 0 when the pipeline exited with 0, else 1.
    """
    if pipeline.poll() is None:
        _say("Stopping the pipeline")
        pipeline.send_signal(signal.SIGTERM)
        try:
            pipeline.wait(PIPELINE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _say(f"The pipeline did not stop within {PIPELINE_STOP_TIMEOUT:g} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pipeline.pid, signal.SIGKILL)  # its source process too
            pipeline.wait()
    _say(f"Pipeline stopped (exit code {pipeline.returncode})")
    return 0 if pipeline.returncode == 0 else 1


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
