"""Hundreds of pairs end to end: `pairs=*/USD` resolved from Kraken's instrument list, 300
pairs on 3 connections, every trade once and in order, and a reconnect of all of them that
their snapshots cover (no REST call, no duplicate)."""

from __future__ import annotations

import re
import time
from itertools import pairwise
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from simulator.market import generated_pairs
from tests.support.kafka import consume
from tests.support.trades import (
    assert_contiguous_without_duplicates,
    by_pair,
    last_ids,
    reached,
    trades_pipeline,
)

USD = generated_pairs(300)
MAINTENANCE = generated_pairs(5, prefix="M")  # */USD too, but not online: left out
EUR = generated_pairs(20, "EUR")  # traded, not asked for
RATE = 600.0  # trades/s over the 320 pairs that trade: about 2 a second each

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(
        [*USD, *MAINTENANCE, *EUR],
        seed=41,
        statuses=dict.fromkeys(MAINTENANCE, "maintenance"),
        seed_history={"count_per_pair": 60, "span_seconds": 60},
    ),
    # at most 2 subscribe requests a second per connection, as a stand-in for Kraken's limit
    pytest.mark.kraken(rate=RATE, batch=10, heartbeat_interval=0.5, subscribe_rate_limit=2),
]


def test_300_pairs_from_a_pattern_on_3_connections_once_in_order_across_a_reconnect(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    env = {"pairs": "*/USD", "max_pairs_per_connection": "100", "subscribe_batch": "50"}
    with trades_pipeline(broker, kraken, tmp_path, **env) as pipeline:
        started = time.monotonic()
        pipeline.wait_for_log(r"All 300 pairs subscribed on 3 connections", timeout=60)
        subscribed_in = time.monotonic() - started
        at_subscribe = last_ids(market, USD)
        assert kraken.active_connections == 3
        assert sorted(len(s) for s in kraken.subscriptions) == [100, 100, 100]
        assert frozenset().union(*kraken.subscriptions) == set(USD)
        time.sleep(2)  # trades flow on every connection

        kraken.drop_connections()  # a network blip: all three are lost at once
        pipeline.wait_for_log(r"(?s)All 300 pairs.*All 300 pairs subscribed", timeout=30)
        time.sleep(2)
        target = last_ids(market, USD)
        records = consume(broker, pipeline.env["output"], until=reached(USD, target), timeout=60)
        assert pipeline.stop() == 0
        log = pipeline.log

    ids = by_pair(records)
    assert set(ids) == set(USD)  # no EUR pair, no pair in maintenance
    assert all(ids[pair][-1] >= target[pair] for pair in USD)
    assert_contiguous_without_duplicates(ids)
    for pair in USD:  # from the first snapshot on: the 50 trades before the subscription
        assert ids[pair][0] <= at_subscribe[pair] - 49, pair
    # the snapshots after the reconnect covered the outage: no REST call, duplicates dropped
    assert not [call for call in kraken.rest_calls if "/Trades" in call]
    assert int(re.findall(r"duplicates_dropped=(\d+)", log)[-1]) > 0
    assert "Gap in" not in log
    # resolution and connections, as logged
    assert "pairs=*/USD: 300 pairs to stream" in log
    assert re.search(r"Left out 5 pairs .*status maintenance: M000/USD", log)
    assert len(re.findall(r"Disconnected from Kraken", log)) == 3
    assert kraken.instrument_requests == 1
    assert all(len(r["params"]["symbol"]) == 50 for r in kraken.subscribe_requests)
    reopened = kraken.connection_times[-3:]  # the three reconnects, one a second at most
    assert all(b - a >= 0.95 for a, b in pairwise(reopened))
    group = re.findall(r"All 300 pairs subscribed on 3 connections \(([\d.]+) s", log)
    print(
        f"MEASURE 300 pairs subscribed {subscribed_in:.1f} s after the process started, "
        f"{group[0]} s after the source's first connection attempt"
    )
