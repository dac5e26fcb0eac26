"""Kraken's REST API misbehaving as it really does, end to end with the default settings:
every trade Kraken can serve reaches the output once and in order, and the gaps topic holds
only what Kraken's REST proved missing (issue 16)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from tests.support.kafka import consume, unique
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    last_ids,
    reached,
    trades_pipeline,
    wait_for_positions,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = pytest.mark.e2e

RATE = 40.0  # trades/s across both pairs


def gap_by_outage(pipeline, kraken: KrakenSimulator, market: Market, connections: int) -> None:
    """Cut the WebSocket long enough that the snapshot cannot cover it: a REST repair."""
    before = last_ids(market)
    kraken.outage(4)
    wait_for_subscriptions(pipeline, connections, timeout=60)
    assert all(last_ids(market)[p] - before[p] > 60 for p in PAIRS)


def no_gap_events(broker: str, topic: str) -> list:
    return consume(broker, topic, until=lambda records: bool(records), timeout=3)


def test_kraken_errors_a_lagging_rest_and_rest_down_only_delay_the_repairs(
    broker: str, tmp_path: Path
) -> None:
    market = Market(PAIRS, seed=41)
    market.seed_history(count_per_pair=60, span_seconds=60)
    with (
        KrakenSimulator(market, rate=RATE, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        wait_for_positions(pipeline)
        first = {p: i - 5 for p, i in wait_for_trades(market, 5).items()}
        # 1. transient Kraken errors, then a healthy REST
        kraken.rest_errors(
            ["EGeneral:Internal error", "EGeneral:Temporary lockout", "EService:Unavailable"], 3
        )
        gap_by_outage(pipeline, kraken, market, 2)
        pipeline.wait_for_log(r"Kraken REST answers again|\) repaired: ", timeout=60)
        # 2. a REST that lags the socket by seconds
        kraken.rest_lag(6)
        gap_by_outage(pipeline, kraken, market, 3)
        pipeline.wait_for_log(r"nothing after trade_id \d+ yet", timeout=30)
        time.sleep(6)
        kraken.rest_lag(0)
        # 3. REST down in the middle of a repair, across several of its waits (2, 4, 8 s),
        # then back; an hour or a day of it is the unit tests' (test_proof.py, a fake clock)
        kraken.rest_down(300, status=503)
        gap_by_outage(pipeline, kraken, market, 4)
        pipeline.wait_for_log(r"waits for Kraken REST: HTTP 503", timeout=60)
        time.sleep(14)
        kraken.rest_down(0)
        target = wait_for_trades(market, 10, timeout=60)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target), timeout=150)
        assert pipeline.stop() == 0
        log = pipeline.log
        gaps = no_gap_events(broker, pipeline.env["gaps_output"])
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]
    assert gaps == [] and "will never be published" not in log
    for said in ("EGeneral:Internal error", "nothing after trade_id", "HTTP 503"):
        assert re.search(rf"WARNING.*waits for Kraken REST: .*{said}", log), said
    assert re.search(r"INFO.*Kraken REST answers again; the repair goes on after", log)


def test_a_restart_after_a_busy_day_under_a_new_group_repairs_from_what_was_written(
    broker: str, tmp_path: Path
) -> None:
    """Failures 4 and 5: a pair without a saved position (a new consumer group, shard count or
    state) took its first live trade on faith, skipping what the downtime held; the gap from
    the last trade already written is repaired instead, through many REST pages: BTC/USD's
    from the output topic; ETH/USD's, which the first run's dataframe never wrote out (a
    transform dropped it), from the source topic, whose trades the new group's dataframe still
    publishes. (Downtimes over the old `max_gap` of 50,000 trades: test_proof.py, with the
    default settings.)"""
    market = Market(PAIRS, seed=43)
    market.seed_history(count_per_pair=60, span_seconds=60)
    output, gaps = unique("trades"), unique("gaps")
    env = {"output": output, "gaps_output": gaps}
    with KrakenSimulator(market, rate=10.0, batch=2, heartbeat_interval=0.5) as kraken:
        first = {**env, "transforms": "tests.support.transforms:btc_usd_only"}
        with trades_pipeline(broker, kraken, tmp_path, **first) as pipeline:
            wait_for_subscriptions(pipeline, 1)
            start = last_ids(market)
            # the output holds BTC/USD up to `start`, and no ETH/USD at all
            consume(broker, output, until=reached(("BTC/USD",), start), timeout=30)
            wait_for_positions(pipeline)  # the source wrote ETH/USD to the source topic
            assert pipeline.stop() == 0
        # the downtime: 10,500 trades per pair, spread over the next 21 s (pages of ~2 s each)
        market.seed_history(10_500, span_seconds=21, end_ns=time.time_ns() + 21 * 10**9)
        restarted = {**env, "Quix__Consumer_Group": unique("another-group")}
        with trades_pipeline(broker, kraken, tmp_path, **restarted) as pipeline:
            saved = pipeline.wait_for_log(r"No saved position for (.*): starting from the last")
            target = {p: i + 20 for p, i in last_ids(market).items()}
            records = consume(broker, output, until=reached(PAIRS, target), timeout=150)
            assert pipeline.stop() == 0
            log = pipeline.log
        events = no_gap_events(broker, gaps)
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= start[pair] and ids[pair][-1] >= target[pair], pair
        assert f"{pair} (trade_id " in saved.group(1)
        assert re.search(rf"Gap in {pair}: trade_id \d+\.\.\d+ \(1\d{{4}} trades\) missed", log)
    assert events == [] and "will never be published" not in log
