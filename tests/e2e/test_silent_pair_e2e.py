"""A pair whose subscription goes silent (Kraken keeps the connection and the other pairs)."""

from __future__ import annotations

import re
import time
from itertools import pairwise
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from tests.support.kafka import consume
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    reached,
    trades_pipeline,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = pytest.mark.e2e

RATE = 40.0  # trades/s across both pairs: 20 per pair, so a few seconds outrun the snapshot
STALE_AFTER = 4.0
CHECK = min(10.0, STALE_AFTER / 4)  # how often the source looks for silent pairs
SUMMARY = re.compile(r"Summary: trades: BTC/USD=(\d+) ETH/USD=(\d+)")


def test_a_silent_pair_is_resubscribed_and_its_missed_trades_arrive_each_once(
    broker: str, tmp_path: Path
) -> None:
    market = Market(PAIRS, seed=23)
    market.seed_history(count_per_pair=60, span_seconds=60)
    with (
        KrakenSimulator(market, rate=RATE, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(
            broker, kraken, tmp_path, stale_after=f"{STALE_AFTER:g}", stats_interval="1"
        ) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        first = {p: i - 5 for p, i in wait_for_trades(market, 5).items()}
        kraken.stall_pair("BTC/USD")  # its trades stop on the socket, go on in the market/REST
        stalled_at = time.monotonic()
        summaries_before = len(SUMMARY.findall(pipeline.log))
        pipeline.wait_for_log(r"No trade of BTC/USD for 4 s or more: resubscribing", timeout=20)
        noticed = time.monotonic() - stalled_at
        pipeline.wait_for_log(r"Gap in BTC/USD \(gap \d+\.\.\d+\) repaired", timeout=20)
        repaired = time.monotonic() - stalled_at
        target = wait_for_trades(market, 20)  # after the repair, both pairs live again
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        assert pipeline.stop() == 0
        log = pipeline.log
    print(
        f"SCENARIO silent-pair stale_after={STALE_AFTER:g}s noticed={noticed:.1f}s "
        f"repaired={repaired:.1f}s"
    )
    assert STALE_AFTER <= noticed <= STALE_AFTER + CHECK + 2.0  # 2 s: polling, a busy machine
    assert repaired <= STALE_AFTER + CHECK + 5.0  # one REST page, about a second
    # each trade once, in order, none missing; the other pair was never checked
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]
    assert re.findall(r"No trade of (.+?) for [\d.]+ s or more", log) == ["BTC/USD"]
    # the other pair flowed on while BTC/USD was silent: it grew between two summaries in
    # which BTC/USD did not
    counts = [(int(b), int(e)) for b, e in SUMMARY.findall(log)][summaries_before:]
    assert any(b1 == b0 and e1 > e0 for (b0, e0), (b1, e1) in pairwise(counts)), counts
    # the trades the snapshot lacked came from REST, the snapshot's and later ones live
    gap = re.search(r"Gap in BTC/USD: trade_id (\d+)\.\.(\d+) \(\d+ trades\) missed", log)
    assert gap and "BTC/USD's subscription had gone silent: Kraken has" in log
    missing = range(int(gap[1]), int(gap[2]) + 1)
    origins = {
        r.value["trade_id"]: r.value["origin"] for r in records if r.value["pair"] == "BTC/USD"
    }
    assert {i for i, o in origins.items() if o == "rest"} == set(missing)
    eth_origins = {r.value["origin"] for r in records if r.value["pair"] == "ETH/USD"}
    assert eth_origins == {"ws"}
    summary = log[log.rindex("Summary:") :]
    assert "stale_probes_newer=1" in summary and "reconnects=0" in summary
