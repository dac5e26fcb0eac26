"""`python -m sources.tools.tail` against the real broker: a pair filter, a start time, follow.

The topic holds two pairs' trades, one a minute over the last half hour, on three partitions,
with each record's Kafka timestamp its trade's time (as the pipeline writes them). On Tansu the
time lookup answers every partition's start, so these tests also show that the records before
`--since` are skipped by their time, not only found by the broker's index.
"""

from __future__ import annotations

import io
import threading
import time

import orjson
import pytest
from confluent_kafka import Producer

from sources.tools.tail import main
from tests.support.kafka import create_topic, free_port, unique

MINUTE_MS = 60_000
PAIRS = ("BTC/USD", "ETH/USD")


def trade(pair: str, trade_id: int, timestamp_ms: int, **extra: object) -> dict:
    return {
        "pair": pair,
        "price": 65000.1,
        "volume": 0.0001,
        "side": "buy",
        "order_type": "limit",
        "trade_id": trade_id,
        "timestamp_ms": timestamp_ms,
        "timestamp": "",
        "origin": "rest",
        **extra,
    }


def produce(broker: str, topic: str, values: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for value in values:
        producer.produce(
            topic, key=value["pair"], value=orjson.dumps(value), timestamp=value["timestamp_ms"]
        )
    producer.flush(30)


@pytest.fixture(scope="module")
def topic(broker: str) -> tuple[str, list[dict]]:
    """Thirty trades a pair, one a minute up to now, on three partitions."""
    name = unique("tail")
    create_topic(broker, name, partitions=3)
    now_ms = int(time.time() * 1000)
    values = [
        trade(pair, 100 + i, now_ms - (30 - i) * MINUTE_MS, notional=6.5)
        for i in range(30)
        for pair in PAIRS
    ]
    produce(broker, name, values)
    return name, values


def tail(broker: str, topic: str, *args: str, idle: str = "2") -> tuple[int, str]:
    """Run the tool until `idle` seconds pass without a record: its exit code and output."""
    out = io.StringIO()
    code = main(["--broker", broker, "--topic", topic, "--idle", idle, *args], out=out)
    return code, out.getvalue()


def test_a_pair_from_a_time_on_in_trade_id_order(broker: str, topic: tuple[str, list]) -> None:
    name, values = topic
    since_ms = int(time.time() * 1000) - 10 * MINUTE_MS
    code, out = tail(broker, name, "--pairs", "btc/usd", "--since", "10m")
    expected = [
        v["trade_id"] for v in values if v["pair"] == "BTC/USD" and v["timestamp_ms"] >= since_ms
    ]
    lines = out.splitlines()
    assert code == 0
    assert [int(line.split("#")[1].split()[0]) for line in lines] == expected
    assert 9 <= len(expected) <= 10
    assert all(" BTC/USD " in line and " buy " in line and "@ 65000.1 " in line for line in lines)
    assert all(line.endswith("limit  rest  notional=6.5") for line in lines), lines[0]


def test_an_iso_start_time_a_pattern_json_and_a_limit(broker: str, topic: tuple[str, list]) -> None:
    name, values = topic
    start = values[20]["timestamp_ms"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1000 + 1))
    code, out = tail(broker, name, "--pairs", "*/USD", "--since", iso, "--json", "--limit", "6")
    records = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 6
    assert all(r["timestamp_ms"] > start for r in records)
    assert {r["pair"] for r in records} == set(PAIRS)


def test_it_follows_what_comes_after_it_started(broker: str, topic: tuple[str, list]) -> None:
    name, _ = topic
    now_ms = int(time.time() * 1000)
    later = [trade("ETH/USD", 900 + i, now_ms + i) for i in range(3)]
    timer = threading.Timer(2.0, produce, (broker, name, later))
    timer.start()
    try:
        code, out = tail(broker, name, "--pairs", "ETH/USD", "--since", "1s", idle="5")
    finally:
        timer.join()
    assert code == 0
    assert [line.split("#")[1].split()[0] for line in out.splitlines()] == ["900", "901", "902"]


def test_it_waits_for_the_topic_and_fails_clearly_without_a_broker(
    broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique("tail-later")
    threading.Timer(2.0, create_topic, (broker, name)).start()
    assert tail(broker, name, "--wait", "30")[0] == 0
    assert f"Waiting: topic {name} does not exist yet" in capsys.readouterr().err
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert tail(address, name, "--wait", "2")[0] == 1
    assert time.monotonic() - started < 30
    assert f"no broker answers at {address} (waited 2 s)" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--pairs", "BTCUSD"], ["-X", "x"]])
def test_a_bad_argument_exits_2_naming_it(args: list[str], capsys) -> None:
    assert main(["--broker", "127.0.0.1:1", *args], out=io.StringIO()) == 2
    assert capsys.readouterr().err.startswith(f"tail: {args[0]}: ")
