"""Gap-free delivery: repair from REST, resume after a crash, history, exactly-once, broker loss."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from sources.broker import EmbeddedBroker
from tests.support.kafka import consume, free_port, unique
from tests.support.netfault import CuttableProxy
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

RATE = 60.0  # trades/s across both pairs: 30 per pair

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(PAIRS, seed=11, seed_history={"count_per_pair": 60, "span_seconds": 60}),
    pytest.mark.kraken(rate=RATE, batch=4, heartbeat_interval=0.5),
]


def report(name: str, ids: dict[str, list[int]], first: dict[str, int], last: dict[str, int]):
    """One line per scenario for the closing note: expected, delivered, duplicates, gaps."""
    for pair in PAIRS:
        got = [i for i in ids[pair] if first[pair] <= i <= last[pair]]
        expected = last[pair] - first[pair] + 1
        dups = len(got) - len(set(got))
        gaps = expected - len(set(got))
        print(
            f"SCENARIO {name} {pair}: expected={expected} delivered={len(set(got))} "
            f"duplicates={dups} gaps={gaps}"
        )


def test_outage_longer_than_the_snapshot_is_repaired_from_rest(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path) as pipeline:
        wait_for_subscriptions(pipeline, 1)
        wait_for_positions(pipeline)
        first = {p: i - 5 for p, i in wait_for_trades(market, 5).items()}
        before = last_ids(market)
        kraken.outage(5)  # ~150 trades per pair happen meanwhile: more than the snapshot's 50
        wait_for_subscriptions(pipeline, 2, timeout=60)
        missed = {p: last_ids(market)[p] - before[p] for p in PAIRS}
        assert all(n > 60 for n in missed.values()), missed
        target = wait_for_trades(market, 10)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        assert pipeline.stop() == 0
        log = pipeline.log
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]
    assert re.search(r"Gap in BTC/USD: trade_id \d+\.\.\d+ .* fetching them from Kraken REST", log)
    assert int(re.findall(r"from_rest=(\d+)", log)[-1]) > 0
    report("outage", ids, first, target)


def outage_gap(
    pipeline, kraken: KrakenSimulator, market: Market
) -> tuple[dict[str, int], dict[str, int]]:
    """An outage longer than a snapshot covers: (last ids before it, last ids after it)."""
    wait_for_subscriptions(pipeline, 1)
    wait_for_positions(pipeline)
    wait_for_trades(market, 5)
    before = last_ids(market)
    kraken.outage(5)
    wait_for_subscriptions(pipeline, 2, timeout=60)
    return before, last_ids(market)


def test_gap_larger_than_max_gap_is_logged_and_live_goes_on(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path, max_gap="60") as pipeline:
        outage_gap(pipeline, kraken, market)
        target = wait_for_trades(market, 10)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target))
        assert pipeline.stop() == 0
        log = pipeline.log
    assert re.search(
        r"ERROR.*Gap in BTC/USD: trade_id \d+\.\.\d+ \(\d+ trades\) will never be "
        r"published: max_gap \(\d+ trades, more than max_gap \(60\)\)",
        log,
    )
    for pair, trade_ids in by_pair(records).items():  # one hole per pair, no duplicate
        holes = [b - a for a, b in itertools.pairwise(trade_ids) if b - a != 1]
        assert len(holes) == 1 and holes[0] > 60 and len(set(trade_ids)) == len(trade_ids), pair


@pytest.mark.parametrize("kill_after", [0.3, 2.0, 6.0], ids=["at-once", "mid-commit", "later"])
def test_sigkill_and_restart_backfills_the_downtime_without_duplicates(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path, kill_after: float
) -> None:
    """SIGKILL before the first commit, between commits, and after one (commit_interval 5 s):
    the restart repairs the downtime and writes nothing twice (the dedupe step is seeded
    with what the output topic already holds)."""
    env = {"output": unique("trades"), "Quix__Consumer_Group": unique("trades-app")}
    pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
    try:
        wait_for_subscriptions(pipeline, 1)
        first = {p: i - 20 for p, i in wait_for_trades(market, 20).items()}
        time.sleep(kill_after)
        pipeline.kill()  # SIGKILL, the app and its source process
        wait_for_trades(market, 120)  # the downtime: more than a snapshot can cover
        pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
        target = wait_for_trades(market, 10)
        records = consume(broker, env["output"], until=reached(PAIRS, target), timeout=90)
        assert pipeline.stop() == 0
    finally:
        pipeline.kill()
    ids = by_pair(records)
    report(f"sigkill-restart-{kill_after:g}s", ids, first, target)
    for pair in PAIRS:
        distinct = sorted(set(ids[pair]))
        assert distinct == list(range(distinct[0], distinct[-1] + 1)), f"{pair} has a gap"
        assert distinct[0] <= first[pair] and distinct[-1] >= target[pair]
        duplicates = {i: n for i, n in Counter(ids[pair]).items() if n > 1}
        assert not duplicates, f"{pair}: {len(duplicates)} trade_ids written twice"


# History since an hour ago, then live: tests/e2e/test_audit_e2e.py (one pipeline run shared
# with the audit's tests).


def test_backfill_only_builds_a_dataset_and_exits_zero(broker: str, tmp_path: Path) -> None:
    """Issue 16, failure 2: a broken row in a full page used to end the history as complete
    at that page, with exit 0 and the rest of the history missing."""
    market = Market(PAIRS, seed=9)
    market.seed_history(count_per_pair=2500, span_seconds=7000)
    broken = market.history("BTC/USD")[500].trade_id  # inside the first full page
    flaky = market.history("ETH/USD")[999].trade_id  # the last row of a full page, twice
    with KrakenSimulator(market, rate=0) as kraken:
        kraken.corrupt_rest_row("BTC/USD", broken)  # broken on every read
        kraken.corrupt_rest_row("ETH/USD", flaky, reads=2)
        pipeline = trades_pipeline(
            broker, kraken, tmp_path, backfill_since="2h", backfill_only="true"
        ).start()
        try:
            code = pipeline.wait(timeout=120)
        finally:
            pipeline.kill()
    assert code == 0, pipeline.log[-3000:]
    expected = {p: [t.trade_id for t in market.history(p)] for p in PAIRS}
    expected["BTC/USD"].remove(broken)
    total = sum(map(len, expected.values()))
    records = consume(  # after the exit code: everything fetched is in the output already
        broker, pipeline.env["output"], until=lambda r: len(r) >= total, timeout=30
    )
    got = by_pair(records)
    for pair in PAIRS:
        missing = sorted(set(expected[pair]) - set(got[pair]))
        extra = [i for i in got[pair] if i not in set(expected[pair])]
        assert got[pair] == expected[pair], (pair, missing[:20], extra[:20], pipeline.log[-3000:])
    [gap] = consume(broker, pipeline.env["gaps_output"], until=lambda r: len(r) > 1, timeout=5)
    event = gap.value
    assert (event["pair"], event["first_trade_id"], event["last_trade_id"]) == (
        "BTC/USD",
        broken,
        broken,
    )
    assert event["reason"] == "unreadable"
    assert "Backfill over (complete)" in pipeline.log


def test_exactly_once_after_a_crash_mid_batch(
    transactional_broker: str, market: Market, tmp_path: Path
) -> None:
    """A read_committed consumer sees each trade once, though the app died mid-transaction."""
    broker = transactional_broker
    env = {
        "output": unique("trades"),
        "Quix__Consumer_Group": unique("trades-app"),
        "processing_guarantee": "exactly-once",
    }
    with KrakenSimulator(market, rate=400.0, batch=10, heartbeat_interval=0.5) as kraken:
        pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
        try:
            wait_for_subscriptions(pipeline, 1)
            first = {p: i - 400 for p, i in wait_for_trades(market, 400).items()}
            pipeline.kill()  # mid-stream: batches in flight, a transaction open
            pipeline = trades_pipeline(broker, kraken, tmp_path, **env).start()
            pipeline.wait_for_log(r"Resuming from the state: ")
            target = wait_for_trades(market, 200)
            records = consume(
                broker,
                env["output"],
                until=reached(PAIRS, target),
                timeout=90,
                isolation="read_committed",
            )
            assert pipeline.stop() == 0
        finally:
            pipeline.kill()
    ids = by_pair(records)
    report("exactly-once-crash", ids, first, target)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]


def test_exactly_once_across_a_restart(broker: str, market: Market, tmp_path: Path) -> None:
    """Transactions commit and resume cleanly (on any broker, Tansu included)."""
    env = {
        "output": unique("trades"),
        "Quix__Consumer_Group": unique("trades-app"),
        "processing_guarantee": "exactly-once",
    }
    with KrakenSimulator(market, rate=200.0, batch=5, heartbeat_interval=0.5) as kraken:
        with trades_pipeline(broker, kraken, tmp_path, **env) as pipeline:
            wait_for_subscriptions(pipeline, 1)
            first = {p: i - 100 for p, i in wait_for_trades(market, 100).items()}
            assert pipeline.stop() == 0
        wait_for_trades(market, 200)  # more than a snapshot: repaired from REST
        with trades_pipeline(broker, kraken, tmp_path, **env) as pipeline:
            pipeline.wait_for_log(r"Resuming from the state: ")
            target = wait_for_trades(market, 100)
            records = consume(
                broker,
                env["output"],
                until=reached(PAIRS, target),
                timeout=90,
                isolation="read_committed",
            )
            assert pipeline.stop() == 0
    ids = by_pair(records)
    report("exactly-once-restart", ids, first, target)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]


def test_broker_that_never_appears_exits_non_zero(kraken: KrakenSimulator, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    with trades_pipeline(address, kraken, tmp_path, broker_timeout="4") as pipeline:
        code = pipeline.wait(timeout=60)
    assert code == 1
    assert f"Broker unavailable: no broker answered at {address} within 4 s" in pipeline.log


def test_broker_late_at_start_then_trades_flow(
    kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    port = free_port()
    with trades_pipeline(f"127.0.0.1:{port}", kraken, tmp_path) as pipeline:
        pipeline.wait_for_log(r"Waiting for the broker at 127\.0\.0\.1:\d+")
        with EmbeddedBroker(port=port) as late:
            pipeline.wait_for_log(r"Subscribed to ETH/USD", timeout=60)
            target = wait_for_trades(market, 10)
            records = consume(late.address, pipeline.env["output"], until=reached(PAIRS, target))
            assert pipeline.stop() == 0
    assert_contiguous_without_duplicates(by_pair(records))


def test_broker_away_mid_stream_then_back_loses_nothing(
    kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    proxy_port, broker_port = free_port(), free_port()
    with EmbeddedBroker(port=broker_port, advertised_port=proxy_port):
        proxy = CuttableProxy(proxy_port, broker_port).start()
        address = f"127.0.0.1:{proxy_port}"
        try:
            with trades_pipeline(address, kraken, tmp_path, broker_timeout="60") as pipeline:
                wait_for_subscriptions(pipeline, 1)
                first = {p: i - 10 for p, i in wait_for_trades(market, 10).items()}
                # the broker is unreachable for ~8 s (~240 trades per pair), longer than the
                # consumer's session timeout (2 s on Tansu): the group forgot it on its return
                proxy.cut()
                wait_for_trades(market, 240)
                proxy.restore()
                target = wait_for_trades(market, 20)
                # a consumer closed while its join was under way can hold Tansu's group for
                # 40 s and more (docs/benchmark.md, Start-up): a restart then waits out the
                # assignment watchdog, once or twice
                records = consume(
                    address, pipeline.env["output"], until=reached(PAIRS, target), timeout=180
                )
                assert pipeline.stop() == 0
                log = pipeline.log
        finally:
            proxy.stop()
    ids = by_pair(records)
    report("broker-outage", ids, first, target)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]
    assert re.search(r"brokers? (are|is) down", log)
