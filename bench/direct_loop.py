"""Contender 2, the direct loop: Kraken WebSocket -> orjson -> confluent-kafka, no Quix Streams.

The least a Python process must do for the same output: read a frame, parse it, write one
normalized JSON record per trade, keyed by pair and stamped with the trade's time. No
state, no dedupe, no gap repair, no reconnects: a yardstick, not a product.

    python -m bench.direct_loop --broker HOST:PORT --topic T --ws-url URL --pairs A/B,C/D
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

import orjson
import websocket
from confluent_kafka import Producer

from bench.records import BASE_PRODUCER_CONFIG, output_record

_running = True


def _stop(signum: int, frame: FrameType | None) -> None:
    global _running
    _running = False


def run(broker: str, topic: str, ws_url: str, pairs: list[str], producer_config: dict) -> int:
    """Stream until SIGTERM/SIGINT; return the number of trades produced."""
    producer = Producer({**BASE_PRODUCER_CONFIG, **producer_config, "bootstrap.servers": broker})
    ws = websocket.create_connection(ws_url, skip_utf8_validation=True)
    ws.settimeout(0.5)
    params = {"channel": "trade", "symbol": pairs, "snapshot": False}
    ws.send(orjson.dumps({"method": "subscribe", "params": params}).decode())
    produce = producer.produce
    produced = 0
    while _running:
        try:
            _, frame = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            producer.poll(0)
            continue
        message = orjson.loads(frame)
        if message.get("channel") != "trade":
            continue
        for trade in message["data"]:
            key, value, ms = output_record(trade)
            try:
                produce(topic, value, key, timestamp=ms)
            except BufferError:
                producer.poll(0.1)
                produce(topic, value, key, timestamp=ms)
        produced += len(message["data"])
        producer.poll(0)
    ws.close()
    producer.flush(30)
    return produced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--pairs", required=True, help="comma-separated Kraken v2 symbols")
    parser.add_argument("--producer-config", default="{}", help="JSON librdkafka settings")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    produced = run(
        args.broker,
        args.topic,
        args.ws_url,
        args.pairs.split(","),
        orjson.loads(args.producer_config),
    )
    print(f"direct loop: {produced} trades produced", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
