"""Metrics and health logic without sockets or processes: the source's sync from a real `Feed`,
the dataframe's and the candles' counters, /healthz and /readyz answers (the multiprocess
directory, with real processes: tests/component/test_metrics_multiprocess.py).

Each test gives its metrics a registry of its own and reads them back from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sources.kraken.feed import Feed, FeedConfig, Fetch
from sources.kraken.session import SessionStats
from sources.observability.health import BrokerProbe, Health, SourceState, read_source_state
from sources.observability.metrics import CandlesMetrics, DataframeMetrics, SourceMetricSet
from sources.observability.server import MetricsServer
from sources.observability.sync import SYNC_INTERVAL, SourceMetrics
from sources.steps.dedupe import DropPublished
from tests.support.core import BASE_MS, PAIRS, trade, trades
from tests.support.state import DictState


@dataclass
class Rest:
    calls_ok: int = 0
    calls_throttled: int = 0
    calls_failed: int = 0


@dataclass
class Session:
    subscribed: set[str] = field(default_factory=set)
    connection_id: int | None = None


class Source:
    """What the source hands to `SourceMetrics.sync`, with a real `Feed`."""

    def __init__(self, config: FeedConfig) -> None:
        self.registry = CollectorRegistry()
        self.feed = Feed(config)
        self.session_stats = SessionStats()
        self.bad_rows = 0
        self.rest = Rest()
        self.sessions: list[Session] = []
        self.left_out: set[str] = set()
        self.metrics = SourceMetrics(
            config.pairs, config.backfill_since_ns, SourceMetricSet(self.registry)
        )
        self.now = 0.0

    def sync(self) -> None:
        self.now += SYNC_INTERVAL
        self.metrics.sync(
            self.now,
            feed=self.feed,
            session_stats=self.session_stats,
            bad_rest_rows=self.bad_rows,
            rest=self.rest,
            sessions=self.sessions,
            left_out=self.left_out,
        )

    def value(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        assert value is not None, f"no sample {name} {labels}"
        return value

    def answer(self, fetch: Fetch, ids: range) -> None:
        """REST answers `fetch` with trades `ids` of its pair."""
        page = trades(ids, fetch.pair)
        self.feed.page(fetch.request_id, page, page[-1].timestamp_ms * 1_000_000, self.now)


def fetches(feed: Feed) -> list[Fetch]:
    feed.tick(0.0)  # the scheduler sends the next page request
    return [a for a in feed.actions() if isinstance(a, Fetch)]


PUBLISHED = "kraken_trades_published_total"


def test_a_repaired_gap_moves_each_counter_by_what_happened() -> None:
    source = Source(FeedConfig(pairs=PAIRS))
    source.sync()
    assert source.value(PUBLISHED, pair="BTC/USD", origin="ws") == 0  # shown before any trade
    source.feed.receive(trades(range(1, 4)) + trades(range(1, 3), "ETH/USD"), 0.0)
    source.feed.receive(trades(range(9, 10)), 0.0)  # BTC/USD trade_ids 4..8 missed
    source.sync()
    assert source.value("kraken_trades_gaps_found_total", pair="BTC/USD") == 1
    assert source.value("kraken_trades_gaps_found_total", pair="ETH/USD") == 0
    assert source.value("kraken_trades_held", pair="BTC/USD") == 1
    (fetch,) = fetches(source.feed)
    source.answer(fetch, range(3, 12))  # from the trade before the gap, and past its end
    source.sync()
    for name, pair, value in [
        ("kraken_trades_gaps_repaired_total", "BTC/USD", 1),
        ("kraken_trades_backfilled_total", "BTC/USD", 5),
        ("kraken_trades_held", "BTC/USD", 0),
        ("kraken_trades_backfilled_total", "ETH/USD", 0),
    ]:
        assert source.value(name, pair=pair) == value, name
    for reason in ("rest_lacks", "unreadable"):  # proven reasons are shown from the start
        assert (
            source.value("kraken_trades_gaps_unrepaired_total", pair="BTC/USD", reason=reason) == 0
        )
    assert source.value(PUBLISHED, pair="BTC/USD", origin="rest") == 5
    assert source.value(PUBLISHED, pair="BTC/USD", origin="ws") == 4  # 1..3 and the held 9
    assert source.value(PUBLISHED, pair="ETH/USD", origin="ws") == 2
    assert source.value("kraken_trades_last_trade_timestamp_seconds", pair="BTC/USD") == (
        trade(9).timestamp_ms / 1000
    )


def test_a_sync_adds_only_what_changed_since_the_last() -> None:
    source = Source(FeedConfig(pairs=PAIRS))
    source.feed.receive(trades(range(1, 6)), 0.0)
    source.session_stats.malformed = 2
    source.session_stats.reconnects = 1
    source.bad_rows = 3
    source.rest.calls_ok, source.rest.calls_throttled, source.rest.calls_failed = 4, 1, 2
    source.sync()
    source.sync()  # nothing new: nothing added
    assert source.value(PUBLISHED, pair="BTC/USD", origin="ws") == 5
    assert source.value("kraken_trades_malformed_total", input="ws") == 2
    assert source.value("kraken_trades_malformed_total", input="rest") == 3
    assert source.value("kraken_trades_reconnects_total") == 1
    assert source.value("kraken_trades_rest_calls_total", outcome="ok") == 4
    assert source.value("kraken_trades_rest_calls_total", outcome="throttled") == 1
    assert source.value("kraken_trades_rest_calls_total", outcome="error") == 2
    source.feed.receive(trades(range(3, 8)), 0.0)  # 3..5 again (duplicates), 6..7 new
    source.session_stats.malformed += 1
    source.sync()
    assert source.value(PUBLISHED, pair="BTC/USD", origin="ws") == 7
    assert source.value("kraken_trades_duplicates_dropped_total", stage="source") == 3
    assert source.value("kraken_trades_malformed_total", input="ws") == 3


def test_a_gap_without_repair_counts_unrepaired_and_missed() -> None:
    source = Source(FeedConfig(pairs=PAIRS, repair=False))
    source.feed.receive(trades(range(1, 3), "ETH/USD") + trades(range(10, 12), "ETH/USD"), 0.0)
    source.sync()
    unrepaired = "kraken_trades_gaps_unrepaired_total"
    assert source.value(unrepaired, pair="ETH/USD", reason="repair_off") == 1
    assert source.value("kraken_trades_missed_total", pair="ETH/USD", reason="repair_off") == 7
    assert source.value(unrepaired, pair="BTC/USD", reason="rest_lacks") == 0


def test_subscriptions_and_connections_come_from_the_open_sessions() -> None:
    source = Source(FeedConfig(pairs=PAIRS))
    source.sessions = [Session({"BTC/USD"}, connection_id=None)]  # not named by Kraken yet
    source.sync()
    assert source.value("kraken_trades_pairs_configured") == 2
    assert source.value("kraken_trades_pairs_subscribed") == 1
    assert source.value("kraken_trades_pair_subscribed", pair="ETH/USD") == 0
    assert source.value("kraken_trades_connections_open") == 0
    source.sessions = [Session({"BTC/USD", "ETH/USD"}, connection_id=7)]
    source.sync()
    assert source.value("kraken_trades_pairs_subscribed") == 2
    assert source.value("kraken_trades_connections_open") == 1
    assert source.value("kraken_trades_source_heartbeat_timestamp_seconds") == pytest.approx(
        time.time(), abs=5
    )
    source.left_out = {"ETH/USD"}  # a pair of a pattern that Kraken refused: not expected
    source.sessions = [Session({"BTC/USD"}, connection_id=7)]
    source.sync()
    assert source.value("kraken_trades_pairs_configured") == 1
    assert source.value("kraken_trades_pairs_subscribed") == 1


def test_backfill_progress_runs_from_since_to_now() -> None:
    since_ns = (BASE_MS - 1000) * 1_000_000
    source = Source(FeedConfig(pairs=("BTC/USD",), backfill_since_ns=since_ns))
    source.sync()
    assert source.value("kraken_trades_backfill_progress_ratio", pair="BTC/USD") == 0
    (fetch,) = fetches(source.feed)
    source.answer(fetch, range(1, 11))  # a short page: the history is complete
    source.sync()
    assert source.value("kraken_trades_backfill_progress_ratio", pair="BTC/USD") == 1


def test_one_latency_observation_per_message_and_no_label() -> None:
    source = Source(FeedConfig(pairs=PAIRS))
    now_ms = int(time.time() * 1000)
    source.metrics.observe_publish(now_ms - 250)
    source.metrics.observe_publish(now_ms + 60_000)  # a clock ahead of ours: counts as 0
    name = "kraken_trades_publish_latency_seconds"
    assert source.value(f"{name}_count") == 2
    assert source.value(f"{name}_bucket", le="0.005") == 1
    assert 0.25 <= source.value(f"{name}_sum") < 1.0
    (family,) = [f for f in source.registry.collect() if f.name == name]
    assert {key for sample in family.samples for key in sample.labels} == {"le"}


def test_dataframe_counts_are_flushed_before_a_scrape() -> None:
    registry = CollectorRegistry()
    metrics = DataframeMetrics(registry)
    assert [metrics.output_key({"pair": p}) for p in ("BTC/USD", "ETH/USD")] == list(PAIRS)
    assert registry.get_sample_value("kraken_trades_output_records_total") == 0
    metrics.flush()
    metrics.flush()
    assert registry.get_sample_value("kraken_trades_output_records_total") == 2
    writer = SimpleNamespace(written=5)  # a gap writer that had written before it was followed
    metrics.follow_gap_writer(writer)
    writer.written += 2
    metrics.follow_gap_writer(SimpleNamespace(written=0))  # the app started over: a new writer
    metrics.flush()
    assert registry.get_sample_value("kraken_trades_gap_events_total") == 2
    dedupe = DropPublished(on_dropped=metrics.count_duplicates)
    state = DictState()
    dedupe([{"symbol": "BTC/USD", "trade_id": i} for i in (1, 2, 3)], state)
    dedupe([{"symbol": "BTC/USD", "trade_id": i} for i in (2, 3, 4)], state)
    labels = {"stage": "dataframe"}
    assert registry.get_sample_value("kraken_trades_duplicates_dropped_total", labels) == 2


def test_dedupe_reports_nothing_when_nothing_is_dropped() -> None:
    dropped: list[int] = []
    dedupe = DropPublished(on_dropped=dropped.append)
    state = DictState()
    dedupe([{"symbol": "BTC/USD", "trade_id": 1}], state)
    dedupe([{"symbol": "BTC/USD", "trade_id": 2}], state)
    assert dropped == []


def test_candles_are_counted_by_their_complete_flag() -> None:
    registry = CollectorRegistry()
    metrics = CandlesMetrics(registry)
    for record in ({"complete": True}, {"complete": False}, {}, {"complete": False}):
        metrics.count_candle(record)
    emitted = "kraken_candles_emitted_total"
    assert registry.get_sample_value(emitted, {"complete": "true"}) == 2  # no flag: complete
    assert registry.get_sample_value(emitted, {"complete": "false"}) == 2


# --- health ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.mono, self.wall = 1000.0, 1_800_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


class Broker(BrokerProbe):
    def __init__(self, up: bool | None) -> None:
        super().__init__()
        self.answer = up

    def up(self) -> bool | None:
        return self.answer


def health(clock: Clock, **kwargs: Any) -> Health:
    return Health(clock=lambda: clock.mono, wall=lambda: clock.wall, stale_after=60, **kwargs)


def subscribed(clock: Clock, *pairs: str, missing: tuple[str, ...] = ()) -> SourceState:
    state = {p: True for p in pairs} | {p: False for p in missing}
    return SourceState(clock.wall, len(state), len(pairs), state)


def test_liveness_follows_both_loops() -> None:
    clock = Clock()
    h = health(clock)
    assert h.liveness(SourceState())[0]  # starting: alive
    h.beat()
    state = subscribed(clock, *PAIRS)
    assert h.liveness(state) == (True, h.liveness(state)[1])
    clock.advance(61)
    alive, why = h.liveness(state)
    assert not alive and "dataframe loop" in why and "source loop" in why
    h.beat()
    alive, why = h.liveness(state)
    assert not alive and "source loop: no turn for 61 s" in why
    alive, _ = h.liveness(subscribed(clock, *PAIRS))
    assert alive


def test_readiness_names_what_is_missing() -> None:
    clock = Clock()
    broker = Broker(True)
    h = health(clock, broker=broker)
    ready, why = h.readiness(subscribed(clock, *PAIRS), broker.up())
    assert not ready and "dataframe loop not started" in why
    h.beat()
    assert h.readiness(subscribed(clock, *PAIRS), True) == (True, "ready")
    ready, why = h.readiness(subscribed(clock, "BTC/USD", missing=("ETH/USD",)), True)
    assert not ready and "1 of 2 pairs not subscribed: ETH/USD" in why
    ready, why = h.readiness(subscribed(clock, *PAIRS), False)
    assert not ready and "broker: not reachable" in why
    ready, why = h.readiness(SourceState(), True)
    assert not ready and "source not started" in why
    backfill = health(clock, broker=broker, require_subscriptions=False)
    backfill.beat()
    assert backfill.readiness(subscribed(clock, missing=PAIRS), True)[0]


def test_server_answers_200_or_503_from_the_metrics() -> None:
    registry = CollectorRegistry()
    source = SourceMetricSet(registry)
    clock = Clock()
    broker = Broker(True)
    h = health(clock, broker=broker)
    server = MetricsServer(0, h, registry=registry)  # not started: no socket
    assert server.healthz()[0] == 200  # starting
    assert server.readyz()[0] == 503
    h.beat()
    source.heartbeat.set(clock.wall)
    source.pairs_configured.set(2)
    source.pairs_subscribed.set(1)
    source.pair_subscribed.labels("BTC/USD").set(1)
    source.pair_subscribed.labels("ETH/USD").set(0)
    assert server.readyz() == (503, "not ready: 1 of 2 pairs not subscribed: ETH/USD")
    source.pairs_subscribed.set(2)
    source.pair_subscribed.labels("ETH/USD").set(1)
    assert server.readyz() == (200, "ready")
    broker.answer = False
    assert server.readyz()[0] == 503
    clock.advance(120)
    assert server.healthz()[0] == 503
    assert read_source_state(registry.collect()).configured == 2
    assert b"kraken_trades_pairs_configured 2.0" in server.metrics()
