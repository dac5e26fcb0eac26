"""`python -m simulator.demo`: the whole pipeline offline, printing what reaches the topic.

Starts a broker (Tansu in memory, or the one in `KAFKA_BROKER_ADDRESS`), the Kraken
simulator, and `pipelines/trades/main.py` against both; then prints the output topic
until Ctrl-C (or `--seconds`).
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
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from sources.broker import EmbeddedBroker

from .market import Market
from .server import KrakenSimulator

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description="Offline demo of the trades pipeline")
    parser.add_argument("--pairs", default="BTC/USD,ETH/USD")
    parser.add_argument("--rate", type=float, default=4.0, help="trades/s across pairs")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = parser.parse_args()
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    market = Market(pairs, seed=1)
    market.seed_history(count_per_pair=200, span_seconds=600)

    with contextlib.ExitStack() as stack:
        broker = os.environ.get("KAFKA_BROKER_ADDRESS")
        if not broker:
            broker = stack.enter_context(EmbeddedBroker(port=_free_port())).address
        kraken = stack.enter_context(KrakenSimulator(market, rate=args.rate, batch=2))
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
            [sys.executable, str(ROOT / "pipelines" / "trades" / "main.py")], env=env, cwd=workdir
        )
        stack.callback(_stop, pipeline)
        _print_topic(broker, topic, args.seconds)
    return 0


def _print_topic(broker: str, topic: str, seconds: float) -> None:
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
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            record = orjson.loads(message.value())
            print(
                f"{message.key().decode():>9} #{record['trade_id']:<8} {record['side']:>4} "
                f"{record['volume']:>12.8f} @ {record['price']:<12} {record['timestamp']}",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _stop(pipeline: subprocess.Popen[bytes]) -> None:
    if pipeline.poll() is None:
        pipeline.send_signal(signal.SIGTERM)
        try:
            pipeline.wait(20)
        except subprocess.TimeoutExpired:
            pipeline.kill()


if __name__ == "__main__":
    sys.exit(main())
