"""The trades pipeline as users run it: `main.py` against the Kraken simulator and a broker."""

from __future__ import annotations

import re
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from sources.kraken.trade import parse_timestamp_ms
from tests.support.kafka import consume
from tests.support.schemas import assert_valid
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    reached,
    trades_pipeline,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(
        [*PAIRS, "SOL/USD"], seed=7, seed_history={"count_per_pair": 80, "span_seconds": 60}
    ),
    pytest.mark.kraken(rate=30.0, batch=3, heartbeat_interval=0.5),
]


def test_trades_reach_the_topic_keyed_timed_and_filtered(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path) as pipeline:
        pipeline.wait_for_log(r"Subscribed to ETH/USD")
        target = wait_for_trades(market, 20)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        assert pipeline.stop() == 0
        log = pipeline.log
    # a normal run's log: no warning from imports, the source's producer tuned
    assert "Warning" not in log and "Could not apply" not in log, log[:3000]

    history = {(t.symbol, t.trade_id): t for pair in market.pairs for t in market.history(pair)}
    assert {r.value["pair"] for r in records} == set(PAIRS)  # SOL/USD is traded, not asked for
    assert_valid([r.value for r in records], "trade.v1")  # exactly the schema's fields
    assert {r.value["origin"] for r in records} == {"ws"}  # snapshot and live: no repair
    for record in records:
        value = record.value
        sent = history[(value["pair"], value["trade_id"])]
        assert record.key == value["pair"]
        assert value["price"] == sent.price and value["volume"] == sent.qty
        assert value["side"] == sent.side and value["order_type"] == sent.ord_type
        assert value["timestamp_ms"] == parse_timestamp_ms(sent.to_ws()["timestamp"])
        assert record.timestamp_ms == value["timestamp_ms"]
    partitions = defaultdict(set)
    for record in records:
        partitions[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    # the snapshot asked for on subscribe: the 50 trades before the subscription come first
    for pair in PAIRS:
        assert ids[pair][0] <= target[pair] - 20 - 49


def test_reconnects_after_drop_close_and_silence_without_duplicates(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path) as pipeline:
        pipeline.wait_for_log(r"Subscribed to ETH/USD")
        wait_for_trades(market, 5)
        kraken.drop_connections()
        wait_for_subscriptions(pipeline, 2)
        wait_for_trades(market, 5)
        kraken.close_connections()
        wait_for_subscriptions(pipeline, 3)
        wait_for_trades(market, 5)
        kraken.silence(6)  # longer than heartbeat_timeout=3
        pipeline.wait_for_log(r"no message for 3\.\d s", timeout=20)
        target = wait_for_trades(market, 15)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        pipeline.wait_for_log(r"reconnects=3")
        assert pipeline.stop() == 0
        log = pipeline.log

    assert_contiguous_without_duplicates(by_pair(records))
    assert kraken.connections_total == 4
    # every subscribe asks for all pairs in one request
    assert all(req["params"]["symbol"] == list(PAIRS) for req in kraken.subscribe_requests)
    disconnects = re.findall(r"Disconnected from Kraken \(connection_id=(\d+)\)", log)
    assert len(disconnects) == 3 and len(set(disconnects)) == 3
    assert int(re.findall(r"duplicates_dropped=(\d+)", log)[-1]) > 0


def test_garbage_is_counted_and_loses_no_valid_trade(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    garbage = [
        b"\x00\x01 not json",
        '{"channel":"book","type":"update","data":[]}',
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","price":"x"}]}',
        "[]",
    ]
    with trades_pipeline(broker, kraken, tmp_path) as pipeline:
        pipeline.wait_for_log(r"Subscribed to ETH/USD")
        for frame in garbage:
            kraken.send_raw(frame)
            wait_for_trades(market, 2)
        target = wait_for_trades(market, 5)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        pipeline.wait_for_log(r"malformed=4 ")
        assert pipeline.stop() == 0
        log = pipeline.log

    assert_contiguous_without_duplicates(by_pair(records))
    assert "Malformed input #1 (not JSON" in log
    assert "unknown channel 'book'" in log
    assert "invalid trade: missing field" in log or "price must be a number" in log
    assert "Disconnected" not in log  # garbage never costs the connection


def test_rejected_pair_stops_the_app_with_its_name(
    broker: str, kraken: KrakenSimulator, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path, pairs="BTC/USD,FOO/BAR") as pipeline:
        code = pipeline.wait(timeout=60)
    assert code != 0
    assert re.search(r"ERROR.*Kraken rejected the subscription to FOO/BAR", pipeline.log)


def test_invalid_configuration_fails_fast_naming_the_setting(
    broker: str, kraken: KrakenSimulator, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path, pairs="BTCUSD") as pipeline:
        code = pipeline.wait(timeout=30)
    assert code == 2
    assert "Configuration error: pairs: 'BTCUSD' is not a Kraken v2 symbol" in pipeline.log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path, sig: int
) -> None:
    with trades_pipeline(broker, kraken, tmp_path) as pipeline:
        pipeline.wait_for_log(r"Subscribed to ETH/USD")
        target = wait_for_trades(market, 5)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        started = time.monotonic()
        code = pipeline.stop(sig, timeout=20)
        stopped_in = time.monotonic() - started
    assert code == 0, pipeline.log[-3000:]
    assert stopped_in < 15
    assert "Stopped. trades:" in pipeline.log
    assert records
