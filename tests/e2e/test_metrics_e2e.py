"""The trades pipeline's /metrics, /healthz and /readyz while the simulator misbehaves.

One pipeline run, scraped over HTTP and read with prometheus_client's own parser, in phases
that each move the counters by an amount known from the simulator's side: garbage frames,
a silence that loses trades (repaired from REST, through a throttled and a failed call),
dropped connections, then the totals against the output topic, then an outage (/readyz 503).
The candles pipeline's candle counter against its output; a port in use stops either app.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from simulator import KrakenSimulator, Market
from tests.support.kafka import consume, create_topic, free_port, unique
from tests.support.metrics import Scrape, get, scrape, wait_for_scrape, wait_for_status
from tests.support.pipeline import CANDLES_MAIN, PipelineProcess
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    last_ids,
    reached,
    trades_pipeline,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(PAIRS, seed=5),
    pytest.mark.kraken(rate=40.0, batch=2, heartbeat_interval=0.5, record_send_times=True),
]

PUBLISHED = "kraken_trades_published_total"
SETTLE = 1.5  # seconds: more than one sync of the source's counters (1 s)


def per_pair(s: Scrape, name: str, **labels: str) -> dict[str, float]:
    return {pair: s.value(name, pair=pair, **labels) for pair in PAIRS}


def unsent(kraken: KrakenSimulator, market: Market, after: dict[str, int]) -> dict[str, list[int]]:
    """Per pair, the trade_ids after `after` that the simulator never sent on a WebSocket."""
    return {
        pair: [
            t.trade_id
            for t in market.history(pair)
            if t.trade_id > after[pair] and (pair, t.trade_id) not in kraken.send_times
        ]
        for pair in PAIRS
    }


def settled(port: int, check, what: str, timeout: float = 20.0) -> Scrape:
    """Wait until `check(scrape)` holds, then check it still holds after another sync:
    the counter reached the value and did not go past it."""
    wait_for_scrape(port, check, timeout=timeout, what=what)
    time.sleep(SETTLE)
    again = scrape(port)
    assert check(again), f"{what}: no longer true a sync later:\n{again.text}"
    return again


def test_counters_move_by_exactly_what_happened(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    port = free_port()
    with trades_pipeline(
        broker, kraken, tmp_path, metrics_port=str(port), snapshot="false"
    ) as pipeline:
        # --- up: ready, alive, every metric there -----------------------------------
        wait_for_status(port, "/readyz", 200, timeout=40)
        status, body = get(port, "/healthz")
        assert status == 200, body
        base = wait_for_scrape(port, lambda s: s.value(PUBLISHED) > 0, what="first trades")
        assert base.value("kraken_trades_pairs_configured") == 2
        assert base.value("kraken_trades_pairs_subscribed") == 2
        assert base.value("kraken_trades_connections_open") == 1
        assert base.value("kraken_trades_broker_up") == 1

        # --- garbage: N frames that are not JSON -> malformed{input="ws"} +N -------
        garbage = 3
        for i in range(garbage):
            kraken.send_raw(f"not json {i}")
        s = settled(
            port,
            lambda s: (
                s.value("kraken_trades_malformed_total", input="ws")
                == base.value("kraken_trades_malformed_total", input="ws") + garbage
            ),
            "malformed{input=ws} +3",
        )
        assert s.value("kraken_trades_reconnects_total") == 0
        assert s.value("kraken_trades_malformed_total", input="rest") == 0

        # --- a silence loses trades: one gap per pair, repaired from REST ------------
        before = per_pair(s, PUBLISHED, origin="rest")
        start = last_ids(market)
        kraken.throttle_rest(1)  # the repair's first REST call is throttled,
        kraken.rest_http_status(503, 1)  # its second fails, the third answers
        kraken.silence(1.5)  # < heartbeat_timeout (3 s): no reconnect
        time.sleep(1.5)
        wait_for_trades(market, 5)  # trades after the silence reveal the gaps
        missing = unsent(kraken, market, start)
        for pair, ids in missing.items():  # one contiguous range per pair
            assert ids and ids == list(range(ids[0], ids[-1] + 1)), (pair, ids)
        size = {pair: len(ids) for pair, ids in missing.items()}
        s = settled(
            port,
            lambda s: (
                per_pair(s, "kraken_trades_backfilled_total") == size
                and per_pair(s, "kraken_trades_gaps_repaired_total") == dict.fromkeys(PAIRS, 1)
            ),
            f"backfilled == {size}, one gap repaired per pair",
        )
        assert per_pair(s, "kraken_trades_gaps_found_total") == dict.fromkeys(PAIRS, 1)
        assert per_pair(s, PUBLISHED, origin="rest") == {p: before[p] + size[p] for p in PAIRS}
        assert per_pair(s, "kraken_trades_gaps_unrepaired_total") == dict.fromkeys(PAIRS, 0)
        assert per_pair(s, "kraken_trades_missed_total") == dict.fromkeys(PAIRS, 0)
        assert s.value("kraken_trades_rest_calls_total", outcome="throttled") == 1
        assert s.value("kraken_trades_rest_calls_total", outcome="error") == 1
        assert s.value("kraken_trades_rest_calls_total", outcome="ok") == len(kraken.rest_calls) - 2
        assert s.value("kraken_trades_reconnects_total") == 0

        # --- K dropped connections -> reconnects +K ----------------------------------
        drops = 2
        for i in range(drops):
            kraken.drop_connections()
            wait_for_subscriptions(pipeline, 2 + i)
        s = settled(
            port,
            lambda s: s.value("kraken_trades_reconnects_total") == drops,
            f"reconnects == {drops}",
        )

        # --- quiet: the counters against the output topic -----------------------------
        kraken.pause_trades(True)
        target = last_ids(market)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        ids = by_pair(records)
        assert_contiguous_without_duplicates(ids)
        s = settled(
            port,
            lambda s: (
                s.value(PUBLISHED) == len(records)
                and s.value("kraken_trades_output_records_total") == len(records)
            ),
            f"published == output records == {len(records)}",
        )
        assert per_pair(s, PUBLISHED, origin="ws") == {
            p: len(ids[p]) - s.value(PUBLISHED, pair=p, origin="rest") for p in PAIRS
        }
        assert per_pair(s, "kraken_trades_backfilled_total") == per_pair(
            s, PUBLISHED, origin="rest"
        )
        # every gap the drops made was repaired, nothing given up, nothing held
        assert per_pair(s, "kraken_trades_gaps_found_total") == per_pair(
            s, "kraken_trades_gaps_repaired_total"
        )
        assert s.value("kraken_trades_gaps_unrepaired_total") == 0
        assert s.value("kraken_trades_held") == 0
        assert s.value("kraken_trades_duplicates_dropped_total", stage="dataframe") == 0
        assert s.value("kraken_trades_gap_events_total") == 0
        assert s.value("kraken_trades_malformed_total", input="ws") == garbage
        last_ms = {r.value["pair"]: r.value["timestamp_ms"] for r in records}
        assert per_pair(s, "kraken_trades_last_trade_timestamp_seconds") == {
            p: last_ms[p] / 1000 for p in PAIRS
        }
        # the latency histogram: observations, and no label but the buckets' `le`
        latency = s.families["kraken_trades_publish_latency_seconds"]
        assert {key for sample in latency.samples for key in sample.labels} == {"le"}
        assert s.value("kraken_trades_publish_latency_seconds_count") > 0

        # --- an outage: not ready (naming the pairs), yet alive ------------------------
        kraken.outage(2.0)
        body = wait_for_status(port, "/readyz", 503, timeout=10)
        assert "2 of 2 pairs not subscribed: BTC/USD, ETH/USD" in body, body
        assert get(port, "/healthz")[0] == 200
        assert pipeline.stop() == 0


def candle_trade(pair: str, at_ms: int, trade_id: int) -> dict:
    """A record as the trades pipeline writes it."""
    return {
        "pair": pair,
        "price": 100.0 + trade_id,
        "volume": 0.5,
        "side": "buy",
        "order_type": "limit",
        "trade_id": trade_id,
        "timestamp_ms": at_ms,
        "timestamp": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(),
    }


def test_candles_emitted_counts_each_candle_by_its_complete_flag(
    broker: str, tmp_path: Path
) -> None:
    t0, window = 1_700_000_000_000, 10_000
    # windows 0..3: the first has no predecessor, window 2 lacks trade_id 7; a trade far
    # ahead closes them all
    ids = {0: [1, 2, 3], 1: [4, 5, 6], 2: [8, 9], 3: [10], 100: [11]}
    trades = [
        candle_trade("BTC/USD", t0 + w * window + i * 100, trade_id)
        for w, batch in ids.items()
        for i, trade_id in enumerate(batch)
    ]
    topic = unique("trades-in")
    create_topic(broker, topic, partitions=3)
    producer = Producer({"bootstrap.servers": broker})
    for record in trades:
        producer.produce(topic, key=record["pair"], value=orjson.dumps(record))
    assert producer.flush(30) == 0
    port = free_port()
    env = {
        "Quix__Broker__Address": broker,
        "Quix__Consumer_Group": unique("candles-app"),
        "input": topic,
        "output": unique("candles"),
        "candle_seconds": "10",
        "grace_seconds": "0",
        "metrics_port": str(port),
    }
    with PipelineProcess(CANDLES_MAIN, env, tmp_path) as pipeline:
        # the output topic exists once the app runs: a consumer can subscribe
        pipeline.wait_for_log(r"The application started and is now processing")
        records = consume(broker, env["output"], until=lambda r: len(r) >= 4, timeout=45)
        flags = [r.value["complete"] for r in records]
        expected = {"true": flags.count(True), "false": flags.count(False)}
        assert expected == {"true": 2, "false": 2}, pipeline.log[-3000:]
        s = settled(
            port,
            lambda s: s.by_label("kraken_candles_emitted_total", "complete") == expected,
            f"emitted == {expected}",
        )
        assert "kraken_trades_published_total" not in s.text  # only this process's metrics
        assert get(port, "/healthz")[0] == 200
        assert wait_for_status(port, "/readyz", 200) == "ready\n"
        assert pipeline.stop() == 0


@pytest.mark.parametrize("script", ["trades", "candles"])
def test_a_metrics_port_in_use_stops_the_app_with_exit_code_2(
    script: str, broker: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"Quix__Broker__Address": broker, "metrics_port": str(port)}
        main = CANDLES_MAIN if script == "candles" else CANDLES_MAIN.parents[1] / "trades/main.py"
        with PipelineProcess(main, env, tmp_path) as pipeline:
            assert pipeline.wait(30) == 2
    assert f"Configuration error: metrics_port {port}" in pipeline.log
