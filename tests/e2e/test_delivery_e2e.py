"""The promise (every trade once, in trade_id order) in the uses that used to break it.

Each test runs `pipelines/trades/main.py` as a process against the Kraken simulator and the
real broker. The numbers in the docstrings are what the source before the per-pair core did.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, ConfigResource

from simulator import KrakenSimulator, Market
from tests.support.kafka import consume
from tests.support.trades import (
    PAIRS,
    HistoryRun,
    assert_contiguous_without_duplicates,
    by_pair,
    last_ids,
    reached,
    trades_pipeline,
    wait_for_positions,
    wait_for_subscriptions,
    wait_for_trades,
)

DAY = 86_400


def test_two_pairs_multi_day_history_then_live_loses_neither(broker: str, tmp_path: Path) -> None:
    """Failure 1: both histories were queued at once and the second one's stall clock ran
    from its creation, so it was abandoned after `repair_timeout` and never published."""
    market = Market(PAIRS, seed=21)
    market.seed_history(count_per_pair=6000, span_seconds=2 * DAY)  # 6 pages per pair
    env = {"backfill_since": "3d", "repair_timeout": "4"}
    with (
        KrakenSimulator(market, rate=10.0, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path, **env) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1, timeout=60)
        target = wait_for_trades(market, 5)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target), timeout=120)
        assert pipeline.stop() == 0
        log = pipeline.log
    ids = by_pair(records)
    for pair in PAIRS:
        history = [t.trade_id for t in market.history(pair) if t.trade_id <= target[pair]]
        delivered = [i for i in ids[pair] if i <= target[pair]]
        print(
            f"SCENARIO two-pair-history {pair}: expected={len(history)} delivered={len(delivered)}"
        )
        assert delivered == history, f"{pair}: {len(history) - len(set(delivered))} trades missing"
    assert "will never be published" not in log


def test_a_busy_pair_during_a_long_repair_neither_crashes_nor_loses_trades(
    broker: str, tmp_path: Path
) -> None:
    """Failure 3: the live trades held behind a long repair went out as one source-topic
    message; past ~6,000 trades it exceeded 1 MB and the app died with MSG_SIZE_TOO_LARGE."""
    market = Market(PAIRS, seed=23)
    market.seed_history(count_per_pair=60, span_seconds=60)
    # 200 trades/s per pair: together well below what REST serves (1,000 trades a page, a
    # page a second), so the repairs catch up with the present; a busier market than Kraken's.
    env = {"max_held": "1000"}  # also walks the path where held trades are let go
    with (
        KrakenSimulator(market, rate=400.0, batch=10, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path, **env) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        wait_for_positions(pipeline)
        before = last_ids(market)
        kraken.outage(12)  # 2,400+ trades per pair: 3+ REST pages each, one a second
        # reconnect attempts back off during the outage (ceilings 1, 2, 4, 8, 16 s)
        wait_for_subscriptions(pipeline, 2, timeout=90)
        missed = {p: last_ids(market)[p] - before[p] for p in PAIRS}
        assert min(missed.values()) > 2000, missed
        pipeline.wait_for_log(r"exceed max_held", timeout=60)
        target = wait_for_trades(market, 100)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target), timeout=180)
        assert pipeline.process is not None and pipeline.process.poll() is None
        assert pipeline.stop() == 0
        log = pipeline.log
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= before[pair] and ids[pair][-1] >= target[pair]
    assert "MSG_SIZE_TOO_LARGE" not in log and "will never be published" not in log


def test_output_topic_keeps_records_forever_and_source_records_carry_write_time(
    broker: str, thirty_day_history: HistoryRun
) -> None:
    """Failure 5: topics were created with 7 days' retention and records stamped with the
    trade's own time, so a 30-day backfill was deletable as soon as its segments rolled."""
    market, pipeline = thirty_day_history.market, thirty_day_history.pipeline
    assert thirty_day_history.code == 0, pipeline.log[-3000:]
    output = pipeline.env["output"]
    source_topic = f"source__kraken-{output}"
    admin = AdminClient({"bootstrap.servers": broker})
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in (output, source_topic)]
    configs = {r.name: f.result(30) for r, f in admin.describe_configs(resources).items()}
    assert configs[output]["retention.ms"].value == "-1"
    assert int(configs[source_topic]["retention.ms"].value) >= 7 * DAY * 1000
    records = consume(broker, source_topic, until=lambda r: len(r) >= 2, timeout=60)
    oldest_trade_ms = min(t.time_ns // 1_000_000 for p in PAIRS for t in market.history(p))
    assert oldest_trade_ms < (time.time() - 19 * DAY) * 1000
    for record in records:  # written now, whatever the age of the trades inside
        assert abs(record.timestamp_ms / 1000 - time.time()) < 600


def test_a_server_that_acks_then_drops_gets_a_growing_backoff(broker: str, tmp_path: Path) -> None:
    """Failure 6: every subscribe ack reset the backoff, so a server that acks and then
    drops kept the client at about one connection a second (46 in 40 s)."""
    market = Market(PAIRS, seed=27)
    with (
        KrakenSimulator(market, rate=20.0, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        stop = threading.Event()

        def flap() -> None:  # drop every connection half a second after its acks
            seen = kraken.connections_total
            while not stop.is_set():
                if kraken.connections_total != seen and kraken.active_connections:
                    seen = kraken.connections_total
                    time.sleep(0.5)
                    kraken.drop_connections()
                time.sleep(0.05)

        start, connections_before = time.monotonic(), kraken.connections_total
        kraken.drop_connections()
        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()
        time.sleep(25)
        stop.set()
        flapper.join()
        connections = kraken.connections_total - connections_before
        elapsed = time.monotonic() - start
        wait_for_subscriptions(pipeline, connections + 1, timeout=90)  # it comes back
        assert pipeline.stop() == 0
        log = pipeline.log
    attempts = [int(n) for n in re.findall(r"reconnecting in [\d.]+ s \(attempt (\d+)\)", log)]
    print(f"SCENARIO flapping: {connections} connections in {elapsed:.0f} s, attempts {attempts}")
    assert attempts == list(range(1, len(attempts) + 1)), attempts  # never started over
    # full jitter over ceilings 1, 2, 4, 8, 16 s: about 5 connections in 25 s, not 25+
    assert connections <= 9, f"{connections} connections in {elapsed:.0f} s"


def test_a_subscribe_error_without_a_symbol_after_healthy_running_reconnects(
    broker: str, tmp_path: Path
) -> None:
    """Failure 7: such an error stopped the app even after hours of healthy running."""
    market = Market(PAIRS, seed=29)
    with (
        KrakenSimulator(market, rate=20.0, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        wait_for_trades(market, 5)
        kraken.send_raw('{"method":"subscribe","success":false,"error":"EGeneral:Internal"}')
        wait_for_subscriptions(pipeline, 2, timeout=30)
        target = wait_for_trades(market, 10)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        assert pipeline.stop() == 0
        log = pipeline.log
    assert "Disconnected from Kraken" in log and "rejected the subscription" not in log
    assert_contiguous_without_duplicates(by_pair(records))


def test_history_of_a_pair_rest_does_not_know_exits_non_zero_naming_it(
    broker: str, tmp_path: Path
) -> None:
    """Failure 7: `backfill_only` exited 0 although AssetPairs lacked a pair. Now it exits 2
    (a configuration error), and only once the other pair's history is all written."""
    market = Market(PAIRS, seed=31)
    market.seed_history(count_per_pair=200, span_seconds=3600)
    with KrakenSimulator(market, rate=0) as kraken:
        env = {"backfill_since": "2h", "backfill_only": "true", "pairs": "BTC/USD,XRP/USD"}
        pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
        try:
            code = pipeline.wait(timeout=120)
        finally:
            pipeline.kill()
    assert code == 2, pipeline.log[-3000:]  # a configuration error: the pair or the URL
    assert re.search(
        r"ERROR.*XRP/USD: Kraken REST cannot repair it: .*no pair for XRP/USD", pipeline.log
    )
    assert re.search(
        r"The backfill of XRP/USD is incomplete: Kraken's REST cannot serve it", pipeline.log
    )


def test_history_stopped_midway_exits_non_zero(broker: str, tmp_path: Path) -> None:
    """Failure 7: `backfill_only` exited 0 after a SIGTERM in the middle of the history."""
    market = Market(PAIRS, seed=33)
    market.seed_history(count_per_pair=20_000, span_seconds=DAY)  # 20 pages per pair
    with KrakenSimulator(market, rate=0) as kraken:
        env = {"backfill_since": "2d", "backfill_only": "true"}
        pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
        try:
            pipeline.wait_for_log(r"Subscribed|Backfilling", timeout=60)
            time.sleep(4)
            code = pipeline.stop(signal.SIGTERM)
        finally:
            pipeline.kill()
    assert code == 3, pipeline.log[-3000:]
    assert "history was complete" in pipeline.log
