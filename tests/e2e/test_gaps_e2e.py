"""A gap Kraken's REST cannot fill, end to end: named once in the gaps topic, the trades
around it marked by origin, the candle over it incomplete, every record valid by its schema."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from sources.kraken.trade import decimal_text
from tests.support.audit import audit_topic, pair_report
from tests.support.candles import candles_pipeline
from tests.support.kafka import Record, consume, unique
from tests.support.pipeline import STARTED
from tests.support.schemas import assert_valid
from tests.support.trades import (
    PAIRS,
    last_ids,
    reached,
    trades_pipeline,
    wait_for_positions,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = pytest.mark.e2e


def candles_until(pairs_after: dict[str, int], count: int):
    """Stop once each pair has `count` candles starting after the given trade_id."""

    def done(records: list[Record]) -> bool:
        after = Counter(
            r.value["pair"]
            for r in records
            if r.value["first_trade_id"] > pairs_after.get(r.value["pair"], 0)
        )
        return all(after[pair] >= count for pair in pairs_after)

    return done


def test_a_gap_rest_cannot_fill_is_named_once_and_its_candle_is_incomplete(
    broker: str, tmp_path: Path
) -> None:
    market = Market(PAIRS, seed=23)
    market.seed_history(count_per_pair=60, span_seconds=60)
    started_ms = time.time_ns() // 1_000_000
    env = {"gaps_output": unique("gaps"), "decimal_strings": "true"}
    with (
        KrakenSimulator(market, rate=60.0, batch=4, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path / "trades", **env) as trades,
    ):
        wait_for_subscriptions(trades, 1)
        wait_for_positions(trades)
        wait_for_trades(market, 5)
        before_all = last_ids(market)
        before = before_all["BTC/USD"]
        first, last = before + 5, before + 9  # happen during the outage: only REST has them
        kraken.withhold_rest("BTC/USD", first, last)
        kraken.outage(4)  # ~120 trades per pair: far more than the snapshot's 50
        trades.wait_for_log(
            rf"trade_id {first}\.\.{last} \(5 trades\) will never be published: rest_lacks"
        )
        target = wait_for_trades(market, 45)  # more candles after the gap
        output = consume(broker, trades.env["output"], until=reached(PAIRS, target))
        candles_env = {"input": trades.env["output"], "candle_seconds": "1", "grace_seconds": "0.5"}
        with candles_pipeline(broker, tmp_path / "candles", **candles_env) as candles:
            candles.wait_for_log(STARTED)
            candle_records = consume(
                broker,
                candles.env["output"],
                # both pairs: two candles after the gap each (ETH's are checked too)
                until=candles_until({"BTC/USD": last, "ETH/USD": before_all["ETH/USD"] + 9}, 2),
            )
            assert candles.stop(signal.SIGINT) == 0
        assert trades.stop() == 0
        log = trades.log
        audited = audit_topic(
            *("--broker", broker, "--topic", trades.env["output"], "--gaps", env["gaps_output"]),
            *("--verify-rest", "--kraken-rest-url", kraken.rest_url, "--rest-interval", "0.02"),
        )
    gaps = consume(broker, env["gaps_output"], until=lambda r: len(r) > 1, timeout=4)

    # the gap: once, exactly that range, why, and the trades around it
    history = {t.trade_id: t for t in market.history("BTC/USD")}
    [gap] = gaps
    assert gap.key == "BTC/USD"
    assert gap.value == {
        "pair": "BTC/USD",
        "first_trade_id": first,
        "last_trade_id": last,
        "count": 5,
        "previous_timestamp_ms": history[first - 1].time_ns // 1_000_000,
        "next_timestamp_ms": history[last + 1].time_ns // 1_000_000,
        "reason": "rest_lacks",
        "detail": f"Kraken REST served trade_id {first - 1} then {last + 1}, none between",
        "detected_at_ms": gap.value["detected_at_ms"],
    }
    assert started_ms <= gap.value["detected_at_ms"] <= time.time_ns() // 1_000_000
    assert gap.timestamp_ms == gap.value["previous_timestamp_ms"]
    assert_valid([gap.value], "gap.v1")

    # the trades: valid, exact decimal strings, each once, and where they came from
    values = [r.value for r in output]
    assert_valid(values, "trade.v1")
    repaired = {
        pair: range(int(a), int(b) + 1)
        for pair, a, b in re.findall(r"Gap in (\S+): trade_id (\d+)\.\.(\d+) .*fetching", log)
    }
    assert set(repaired) == set(PAIRS), log[-3000:]
    sims = {(t.symbol, t.trade_id): t for p in PAIRS for t in market.history(p)}
    seen = Counter((v["pair"], v["trade_id"]) for v in values)
    assert max(seen.values()) == 1
    for value in values:
        sim = sims[(value["pair"], value["trade_id"])]
        assert (value["price"], value["volume"]) == (decimal_text(sim.price), decimal_text(sim.qty))
        expected_origin = "rest" if value["trade_id"] in repaired[value["pair"]] else "ws"
        assert value["origin"] == expected_origin, value
    btc_ids = sorted(i for p, i in seen if p == "BTC/USD")
    assert set(range(btc_ids[0], btc_ids[-1] + 1)) - set(btc_ids) == set(range(first, last + 1))
    assert {v["origin"] for v in values} == {"ws", "rest"}

    # the audit: that hole explained by the gap event, Kraken lacking it too; every other
    # trade as Kraken serves it, in decimal strings
    code, report = audited
    assert code == 0 and report["summary"]["status"] == "explained", report["summary"]
    [hole] = pair_report(report, "BTC/USD")["holes"]
    assert (hole["first_trade_id"], hole["last_trade_id"], hole["reasons"]) == (
        first,
        last,
        ["rest_lacks"],
    )
    assert hole["rest_served"] == 0
    for pair in report["pairs"]:
        assert pair["value_mode"] == "decimal_strings"
        assert pair["rest"]["compared"] == pair["trades"] and not pair["rest"]["mismatches"]

    # the candles: the one over the gap is incomplete, its neighbours complete
    assert_valid([r.value for r in candle_records], "candle.v1")
    for pair in PAIRS:
        candles_of_pair = sorted(
            (r.value for r in candle_records if r.value["pair"] == pair),
            key=lambda c: c["window_start_ms"],
        )
        incomplete = [c for c in candles_of_pair[1:] if not c["complete"]]  # [0]: the first
        assert not candles_of_pair[0]["complete"]
        if pair == "ETH/USD":
            assert incomplete == [], incomplete
            continue
        [over] = incomplete
        assert over["first_trade_id"] <= last + 1 <= over["last_trade_id"]
        index = candles_of_pair.index(over)
        assert candles_of_pair[index - 1]["complete"] or index == 1
        assert candles_of_pair[index + 1]["complete"]
