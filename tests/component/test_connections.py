"""Many pairs against the simulator over real sockets: Kraken's list of pairs (instrument
channel, AssetPairs), and a group of connections (batches, one connection lost while the
others flow, spread-out reconnects, a refused pair from a pattern)."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest

from simulator import KrakenSimulator, Market
from simulator.market import generated_pairs
from sources.kraken.config import ConfigError, SourceConfig
from sources.kraken.connections import ConnectionGroup
from sources.kraken.feed import Feed, FeedConfig, Hole, Publish
from sources.kraken.instruments import (
    InstrumentsUnavailable,
    fetch_asset_pairs,
    fetch_instruments,
    resolve_pairs,
)
from sources.kraken.session import SessionStats, SubscriptionRejected
from sources.kraken.trade import Trade
from tests.support.kafka import free_port

USD = generated_pairs(300)
OFFLINE = {USD[7]: "maintenance", USD[8]: "cancel_only", USD[9]: "delisted"}


@pytest.fixture
def sims() -> Iterator[Callable[..., KrakenSimulator]]:
    started: list[KrakenSimulator] = []

    def make(market: Market, **options: object) -> KrakenSimulator:
        sim = KrakenSimulator(market, **options).start()  # type: ignore[arg-type]
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def group_of(
    sim: KrakenSimulator, pairs: tuple[str, ...], rng: random.Random | None = None, **settings: Any
) -> ConnectionGroup:
    """A group on `sim`; `settings` are the source's (`SourceConfig`), a quick heartbeat."""
    settings.setdefault("heartbeat_timeout", 3.0)
    config = SourceConfig(pairs=pairs, ws_url=sim.ws_url, **settings)
    return ConnectionGroup(config, stats=SessionStats(), rng=rng)


def read_until(
    group: ConnectionGroup, done: Callable[[], bool], timeout: float = 15.0
) -> list[tuple[float, Trade]]:
    """Read the group until `done()`; every trade with the time it arrived."""
    got: list[tuple[float, Trade]] = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not met in time"
        for trade in group.read(0.05):
            got.append((time.monotonic(), trade))
    return got


def read_for(group: ConnectionGroup, seconds: float) -> list[tuple[float, Trade]]:
    """Read the group for `seconds`."""
    until = time.monotonic() + seconds
    return read_until(group, lambda: time.monotonic() >= until, seconds + 1)


# --- Kraken's list of pairs ---------------------------------------------------------------


def test_the_instrument_channel_and_asset_pairs_list_every_pair_with_its_status(
    sims: Callable[..., KrakenSimulator],
) -> None:
    market = Market(["BTC/USD", "DOGE/USD", *USD[:20]], statuses=OFFLINE)
    sim = sims(market, rate=0)
    from_ws = {i.symbol: i.status for i in fetch_instruments(sim.ws_url, timeout=5)}
    from_rest = {i.symbol: i.status for i in fetch_asset_pairs(sim.rest_url, timeout=5)}
    expected = {p: market.status(p) for p in market.pairs}
    assert from_ws == expected
    assert from_rest == expected  # wsname XBT/USD, XDG/USD read as BTC/USD, DOGE/USD
    assert from_ws[USD[7]] == "maintenance" and sim.instrument_requests == 1


def test_patterns_resolve_from_the_instrument_channel_else_from_asset_pairs(
    sims: Callable[..., KrakenSimulator],
) -> None:
    market = Market([*USD[:20], *generated_pairs(5, "EUR")], statuses=OFFLINE)
    sim = sims(market, rate=0)
    resolution = resolve_pairs(("*/USD",), sim.ws_url, sim.rest_url, timeout=5)
    assert resolution.pairs == tuple(p for p in USD[:20] if p not in OFFLINE)
    assert dict(resolution.left_out) == {p: f"status {s}" for p, s in OFFLINE.items()}
    dead_ws = f"ws://127.0.0.1:{free_port()}/v2"  # nothing listens: REST is the fallback
    fallback = resolve_pairs(("*/USD",), dead_ws, sim.rest_url, timeout=2, attempts=1)
    assert fallback.pairs == resolution.pairs
    with pytest.raises(InstrumentsUnavailable):
        resolve_pairs(("*/USD",), dead_ws, None, timeout=2, attempts=1)


def test_an_unknown_explicit_symbol_among_patterns_or_nothing_to_stream_fails_naming_it(
    sims: Callable[..., KrakenSimulator],
) -> None:
    sim = sims(Market(USD[:5]), rate=0)
    with pytest.raises(ConfigError, match=r"^pairs: FOO/BAR not among the 5 pairs"):
        resolve_pairs(("FOO/BAR", "*/USD"), sim.ws_url, sim.rest_url, timeout=5)
    with pytest.raises(ConfigError, match=r"^pairs: \*/JPY matches no online Kraken pair"):
        resolve_pairs(("*/JPY",), sim.ws_url, sim.rest_url, timeout=5)
    assert sim.instrument_requests == 2
    resolution = resolve_pairs(("FOO/BAR",), sim.ws_url, sim.rest_url)  # explicit only:
    assert resolution.pairs == ("FOO/BAR",) and sim.instrument_requests == 2  # no look-up


# --- a group of connections ---------------------------------------------------------------


def test_300_pairs_go_on_3_connections_in_batches_of_50_below_the_rate_limit(
    sims: Callable[..., KrakenSimulator],
) -> None:
    market = Market(USD, seed=3)
    market.seed_history(5, span_seconds=10)
    sim = sims(market, rate=0, subscribe_rate_limit=2)  # the third request in a second fails
    group = group_of(sim, USD)
    started = time.monotonic()
    try:
        read_until(group, lambda: group.pairs_subscribed == len(USD))
        elapsed = time.monotonic() - started
        assert group.connections == group.connections_open == 3
        # the simulator records a request's pairs after sending its acks (snapshots next):
        # under load, the last ack can be read before they are recorded
        read_until(group, lambda: sum(map(len, sim.subscriptions)) >= len(USD), 2)
        subscriptions = sim.subscriptions
        assert sorted(len(s) for s in subscriptions) == [100, 100, 100]
        assert frozenset().union(*subscriptions) == set(USD)
        sizes = [len(r["params"]["symbol"]) for r in sim.subscribe_requests]
        assert sizes == [50] * 6 and sim.connections_total == 3
        assert group.stats.reconnects == 0  # no "Exceeded msg rate"
        print(f"MEASURE 300 pairs subscribed on 3 connections in {elapsed:.2f} s")
        assert elapsed < 6
    finally:
        group.close()


def test_one_connection_lost_the_others_flow_on_and_its_snapshots_cover_the_gap(
    sims: Callable[..., KrakenSimulator],
) -> None:
    pairs = USD[:30]
    market = Market(pairs, seed=4)
    market.seed_history(60, span_seconds=30)
    sim = sims(market, rate=300.0, batch=3, heartbeat_interval=0.5)
    # Random(2): the lost connection's first reconnect comes after 0.96 s (full jitter, 0..1 s)
    group = group_of(
        sim, pairs, max_pairs_per_connection=10, subscribe_batch=5, rng=random.Random(2)
    )
    feed = Feed(FeedConfig(pairs=pairs, repair=False))  # no REST: a gap would be a hole
    published: dict[str, list[int]] = defaultdict(list)
    arrived: list[tuple[float, str]] = []

    def run_until(done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "condition not met in time"
            trades = group.read(0.05)
            now = time.monotonic()
            arrived.extend((now, t.symbol) for t in trades)
            feed.receive(trades, now)
            for action in feed.actions():
                assert not isinstance(action, Hole), action
                if isinstance(action, Publish):
                    published[action.pair].extend(t.trade_id for t in action.trades)

    try:
        run_until(lambda: group.pairs_subscribed == 30)
        run_until(lambda: len(published) == 30 and min(map(len, published.values())) > 60)
        victim = pairs[0]
        planned = plan(group)
        others = {p for s in planned if victim not in s for p in s}
        assert sim.drop_connections_of(victim) == 1
        dropped_at = time.monotonic()
        run_until(lambda: group.connections_open == 2, 5)
        run_until(lambda: group.connections_open == 3)
        back_at = time.monotonic()
        assert back_at - dropped_at > 0.9
        flowing = {symbol for at, symbol in arrived if dropped_at < at < back_at}
        assert flowing >= others, "the other connections kept flowing"
        run_until(lambda: group.pairs_subscribed == 30, 5)
        until = time.monotonic() + 1.0
        run_until(lambda: time.monotonic() >= until)
        print(f"MEASURE reconnect of one connection of three: {back_at - dropped_at:.2f} s")
    finally:
        group.close()
    assert group.stats.reconnects == 1
    for pair in pairs:  # the snapshot after the reconnect covered the outage: no hole
        ids = published[pair]
        assert ids == list(range(ids[0], ids[0] + len(ids))), pair
    assert feed.stats.holes == 0 and feed.stats.duplicates > 0


def plan(group: ConnectionGroup) -> list[frozenset[str]]:
    return [frozenset(c.pairs) for c in group._connections]


def test_after_a_blip_connections_reconnect_at_least_a_second_apart(
    sims: Callable[..., KrakenSimulator],
) -> None:
    pairs = USD[:6]
    sim = sims(Market(pairs), rate=20.0, heartbeat_interval=0.5)
    group = group_of(sim, pairs, max_pairs_per_connection=2, rng=random.Random(5))
    try:
        read_until(group, lambda: group.pairs_subscribed == 6)
        opened = sim.connection_times[:]
        sim.drop_connections()
        read_until(group, lambda: group.connections_open == 0, 5)
        read_until(group, lambda: group.pairs_subscribed == 6, 20)
    finally:
        group.close()
    reopened = sim.connection_times[len(opened) :]
    assert len(opened) == len(reopened) == 3
    for times in (opened, reopened):  # at start too: one connection a second
        assert all(b - a >= 0.95 for a, b in pairwise(times)), times


def test_a_refused_pair_from_a_pattern_is_left_out_and_an_explicit_one_stops(
    sims: Callable[..., KrakenSimulator],
) -> None:
    pairs = USD[:40]
    sim = sims(Market(pairs), rate=50.0)
    sim.reject_symbols({pairs[25]})
    group = group_of(sim, pairs, max_pairs_per_connection=20, optional_pairs=set(pairs))
    try:
        read_until(group, lambda: group.pairs_subscribed == 39)
        assert group.left_out.keys() == {pairs[25]} and group.pairs_wanted == 39
        assert group.connections_open == 2 and group.stats.reconnects == 0
    finally:
        group.close()
    strict = group_of(
        sim, pairs, max_pairs_per_connection=20, optional_pairs=set(pairs) - {pairs[25]}
    )
    try:
        with pytest.raises(SubscriptionRejected, match=pairs[25]):
            read_until(strict, lambda: False, 10)
    finally:
        strict.close()


def test_two_pairs_stay_one_connection_and_one_request(
    sims: Callable[..., KrakenSimulator],
) -> None:
    sim = sims(Market(["BTC/USD", "ETH/USD"]), rate=20.0)
    group = group_of(sim, ("BTC/USD", "ETH/USD"))
    try:
        read_until(group, lambda: group.pairs_subscribed == 2)
        assert {t.symbol for _, t in read_for(group, 0.5)} == {"BTC/USD", "ETH/USD"}
    finally:
        group.close()
    assert group.connections == 1 and sim.connections_total == 1
    assert [r["params"]["symbol"] for r in sim.subscribe_requests] == [["BTC/USD", "ETH/USD"]]
