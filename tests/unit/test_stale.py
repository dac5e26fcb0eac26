"""Silent subscriptions: the core checks a pair without live trades by resubscribing.

Kraken can keep a connection alive (heartbeats, other pairs) while one acknowledged pair's
trades stop. The `Feed` notices the silence (`stale_after`), asks for a `Resubscribe`, and
lets the snapshot that comes back tell a quiet pair from a silent subscription.
"""

from __future__ import annotations

import random
from itertools import pairwise

import orjson

from sources.kraken.feed import Feed, FeedConfig, Resubscribe
from sources.kraken.protocol import TradeBatch, parse_frame
from sources.kraken.schedule import ConnectSchedule
from sources.kraken.session import KrakenSession, SessionStats
from sources.kraken.subscriptions import Subscriptions
from sources.kraken.trade import Trade
from tests.support.core import PAIRS, Driver, FakeRest, trades

STALE = 10.0
CHECK = STALE / 4  # how often the core looks for silent pairs (min(10 s, stale_after / 4))


class Kraken:
    """A market the driver's clock moves on: each pair's history, and what reaches the socket."""

    def __init__(self, pairs: tuple[str, ...], first: int = 1, count: int = 100) -> None:
        self.history = {p: trades(range(first, first + count), p) for p in pairs}

    def trade(self, pair: str, n: int = 1) -> list[Trade]:
        """`n` new trades of `pair` (returned: what the WebSocket would send)."""
        last = self.history[pair][-1].trade_id
        new = trades(range(last + 1, last + 1 + n), pair)
        self.history[pair].extend(new)
        return new

    def snapshot(self, pair: str) -> list[Trade]:
        return self.history[pair][-50:]


class StaleDriver(Driver):
    """The feed driver, also collecting the `Resubscribe` actions (with their time)."""

    def __init__(self, feed: Feed, kraken: Kraken, **options: object) -> None:
        super().__init__(feed, FakeRest(kraken.history), **options)  # type: ignore[arg-type]
        self.kraken = kraken
        self.resubscribes: list[tuple[float, tuple[str, ...]]] = []
        actions = feed.actions

        def spy() -> list:
            out = actions()
            self.resubscribes += [(self.now, a.pairs) for a in out if isinstance(a, Resubscribe)]
            return out

        feed.actions = spy  # type: ignore[method-assign]

    def run(self, seconds: float, live: tuple[str, ...] = (), answer: bool = True) -> None:
        """Let `seconds` pass in steps of 0.5 s; `live` pairs trade and reach the socket each
        step (the others trade on in the market only); answer each resubscribe with the
        snapshots of its pairs when `answer`."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            for pair in live:
                self.live(self.kraken.trade(pair))
            answered = len(self.resubscribes)
            self.step(0.5)
            if answer:
                for _, pairs in self.resubscribes[answered:]:
                    self.live([t for p in pairs for t in self.kraken.snapshot(p)])


def stale_feed(pairs: tuple[str, ...] = PAIRS, **config: object) -> Feed:
    config.setdefault("stale_after", STALE)
    positions = config.pop("positions", {})
    return Feed(FeedConfig(pairs=pairs, **config), positions)  # type: ignore[arg-type]


def started(driver: StaleDriver) -> None:
    """Both pairs publish their last 50 trades (a subscription's snapshot)."""
    driver.live([t for p in PAIRS for t in driver.kraken.snapshot(p)])


def test_a_pair_without_trades_is_checked_after_stale_after_and_only_that_pair() -> None:
    driver = StaleDriver(stale_feed(), Kraken(PAIRS))
    started(driver)
    driver.run(STALE - 1, live=("BTC/USD",))
    assert driver.resubscribes == []  # not yet: ETH has been silent for less than stale_after
    driver.run(CHECK + 1.5, live=("BTC/USD",), answer=False)
    assert len(driver.resubscribes) == 1
    at, pairs = driver.resubscribes[0]
    assert pairs == ("ETH/USD",)
    assert STALE <= at <= STALE + CHECK + 0.5  # the clock started at the first tick (0.5 s)


def test_a_quiet_pair_is_checked_once_per_stale_after_and_nothing_is_published() -> None:
    kraken = Kraken(PAIRS)
    driver = StaleDriver(stale_feed(), kraken)
    started(driver)
    driver.run(10 * STALE, live=("BTC/USD",))  # ETH does not trade at all
    times = [at for at, pairs in driver.resubscribes if pairs == ("ETH/USD",)]
    assert len(driver.resubscribes) == len(times)  # BTC, trading, is never checked
    assert 7 <= len(times) <= 10
    assert all(b - a >= STALE for a, b in pairwise(times))
    stats = driver.feed.stats
    assert stats.probes_quiet == len(times) and stats.probes_newer == 0
    assert driver.published["ETH/USD"] == list(range(51, 101))  # the first snapshot only
    assert stats.duplicates == 50 * len(times) and driver.fetches == 0


def test_a_silent_pair_whose_snapshot_holds_the_missed_trades_publishes_them_live() -> None:
    kraken = Kraken(PAIRS)
    driver = StaleDriver(stale_feed(), kraken)
    started(driver)
    driver.run(2.0, live=PAIRS)
    kraken.trade("ETH/USD", 30)  # the subscription went silent: these never reached it
    driver.run(STALE + CHECK + 1, live=("BTC/USD",))
    assert [pairs for _, pairs in driver.resubscribes] == [("ETH/USD",)]
    eth = [t.trade_id for t in kraken.history["ETH/USD"]]
    assert driver.published["ETH/USD"] == eth[50:]  # contiguous, each once
    assert set(driver.origins["ETH/USD"]) == {"ws"} and driver.fetches == 0
    assert (driver.feed.stats.probes_newer, driver.feed.stats.probes_quiet) == (1, 0)
    assert any("had gone silent" in n.message and "30 newer" in n.message for n in driver.notices)


def test_a_silent_pair_whose_snapshot_starts_later_fetches_only_the_rest_from_rest() -> None:
    kraken = Kraken(PAIRS)
    driver = StaleDriver(stale_feed(), kraken)
    started(driver)
    driver.run(2.0, live=PAIRS)
    position = driver.published["ETH/USD"][-1]
    kraken.trade("ETH/USD", 230)  # 230 missed: the snapshot holds the last 50
    driver.run(STALE + CHECK + 1, live=("BTC/USD",))
    driver.run(5.0, live=PAIRS)  # the resubscribed pair trades again (held, then released)
    driver.run_until_idle()
    eth = [t.trade_id for t in kraken.history["ETH/USD"]]
    assert driver.published["ETH/USD"] == eth[50:]
    origins = dict(zip(driver.published["ETH/USD"], driver.origins["ETH/USD"], strict=True))
    missing = range(position + 1, position + 181)  # before the snapshot's first trade
    assert {origins[i] for i in missing} == {"rest"}
    assert {origins[i] for i in range(position + 181, eth[-1] + 1)} == {"ws"}
    assert driver.feed.stats.from_rest == 180  # only the part the snapshot lacks
    assert [f.pair for f in driver.fetch_log] == ["ETH/USD"]
    assert driver.feed.stats.probes_newer == 1 and driver.feed.stats.repaired == 1


def test_no_check_while_the_pair_is_being_repaired() -> None:
    kraken = Kraken(PAIRS)
    driver = StaleDriver(stale_feed(repair_timeout=1000.0), kraken, page_delay=4 * STALE)
    started(driver)
    kraken.trade("ETH/USD", 100)
    driver.live(kraken.trade("ETH/USD"))  # a gap: a REST repair starts, its page is slow
    assert driver.feed.repairing
    driver.run(3 * STALE, live=("BTC/USD",))
    assert driver.resubscribes == [] and driver.feed.repairing
    driver.run(STALE + 1, live=("BTC/USD",))  # the page was asked at the first tick
    assert not driver.feed.repairing
    driver.run(CHECK, live=("BTC/USD",))  # repaired and still silent: now it is checked
    assert [pairs for _, pairs in driver.resubscribes] == [("ETH/USD",)]


def test_stale_after_zero_never_checks() -> None:
    driver = StaleDriver(stale_feed(stale_after=0), Kraken(PAIRS))
    started(driver)
    driver.run(50 * STALE)
    assert driver.resubscribes == []
    assert driver.feed.stats.probes_quiet == driver.feed.stats.probes_newer == 0


def test_many_silent_pairs_share_one_resubscribe() -> None:
    pairs = tuple(f"P{i}/USD" for i in range(40))
    kraken = Kraken(pairs)
    driver = StaleDriver(stale_feed(pairs), kraken)
    driver.live([t for p in pairs for t in kraken.snapshot(p)])
    for pair in pairs[:25]:
        kraken.trade(pair, 70)  # 25 silent subscriptions, 15 quiet pairs
    driver.run(STALE + CHECK + 1)
    assert len(driver.resubscribes) == 1 and set(driver.resubscribes[0][1]) == set(pairs)
    stats = driver.feed.stats
    assert (stats.probes_newer, stats.probes_quiet) == (25, 15)
    driver.run_until_idle()
    for pair in pairs:
        assert driver.published[pair] == [t.trade_id for t in kraken.history[pair]][50:]


def test_an_unanswered_check_counts_as_quiet_and_goes_out_again() -> None:
    driver = StaleDriver(stale_feed(), Kraken(PAIRS))
    started(driver)
    driver.run(STALE + CHECK + 0.5, live=("BTC/USD",), answer=False)
    assert len(driver.resubscribes) == 1 and driver.feed.stats.probes_quiet == 0
    driver.run(STALE + CHECK, live=("BTC/USD",), answer=False)
    assert len(driver.resubscribes) == 2 and driver.feed.stats.probes_quiet == 1
    assert driver.resubscribes[1][0] - driver.resubscribes[0][0] >= STALE


def test_a_check_that_could_not_go_out_is_not_answered_by_the_next_connection() -> None:
    """Disconnected when the check was due: the reconnect's snapshot is no silent-pair
    verdict, and the pair is checked again after another stale_after."""
    kraken = Kraken(PAIRS)
    driver = StaleDriver(stale_feed(), kraken)
    started(driver)
    driver.run(STALE + CHECK + 0.5, live=("BTC/USD",), answer=False)
    [(_, pairs)] = driver.resubscribes
    driver.feed.probes_not_sent(pairs)  # no open connection held ETH/USD
    kraken.trade("ETH/USD", 20)
    driver.live(kraken.snapshot("ETH/USD"))  # the reconnect's snapshot
    assert driver.feed.stats.probes_newer == driver.feed.stats.probes_quiet == 0
    assert driver.published["ETH/USD"][-1] == kraken.history["ETH/USD"][-1].trade_id
    driver.run(STALE + CHECK, live=("BTC/USD",))
    assert [pairs for _, pairs in driver.resubscribes] == [("ETH/USD",)] * 2
    assert driver.feed.stats.probes_quiet == 1


# --- the connection's half: unsubscribe, subscribe with a snapshot; the backoff untouched --


def ack(method: str, symbol: str, req_id: int) -> str:
    result = {"channel": "trade", "snapshot": True, "symbol": symbol}
    return orjson.dumps(
        {"method": method, "req_id": req_id, "result": result, "success": True}
    ).decode()


def receive(subscriptions: Subscriptions, frame: str) -> list[Trade]:
    """One frame into the state machine, as `KrakenSession.read` hands it over: its trades."""
    got: list[Trade] = []
    for event in parse_frame(frame):
        if isinstance(event, TradeBatch):
            got.extend(event.trades)
        else:
            subscriptions.receive(event, 0.0)
    return got


def subscribed(pairs: tuple[str, ...]) -> Subscriptions:
    """A connection's subscriptions with every pair acknowledged."""
    subscriptions = Subscriptions(pairs)
    subscriptions.opened(0.0, req_id=1)
    for pair in pairs:
        receive(subscriptions, ack("subscribe", pair, 1))
    return subscriptions


def test_resubscribe_unsubscribes_then_subscribes_with_a_snapshot_in_one_request_each() -> None:
    subscriptions = subscribed(PAIRS)
    requests = subscriptions.resubscribe(["ETH/USD", "BTC/USD", "SOL/USD"], req_id=7)
    assert requests  # SOL: not its pair
    params = {"channel": "trade", "symbol": ["ETH/USD", "BTC/USD"]}
    assert [orjson.loads(r) for r in requests] == [
        {"method": "unsubscribe", "params": params, "req_id": 7},
        {"method": "subscribe", "params": {**params, "snapshot": True}, "req_id": 7},
    ]
    assert receive(subscriptions, ack("unsubscribe", "ETH/USD", 7)) == []
    assert receive(subscriptions, ack("unsubscribe", "BTC/USD", 7)) == []
    assert subscriptions.subscribed == set(PAIRS)  # within a resubscribe: still counted subscribed
    receive(subscriptions, ack("subscribe", "ETH/USD", 7))
    receive(subscriptions, ack("subscribe", "BTC/USD", 7))
    assert subscriptions.subscribed == set(PAIRS)
    assert not subscriptions.resubscribe(["SOL/USD"], req_id=8)  # none of its pairs
    session = KrakenSession("ws://test/v2", subscriptions, stats=SessionStats())
    assert not session.resubscribe(PAIRS, req_id=9)  # not connected


def test_a_resubscribe_ack_does_not_reset_the_reconnect_backoff() -> None:
    """Only a connection that lasted `healthy_after` resets it; acks (a resubscribe's too)
    prove nothing, or a server that acks then drops would be hammered."""
    schedule = ConnectSchedule(1, spacing=0.0, healthy_after=30.0, rng=random.Random(3))
    policy = schedule.policies[0]
    now = 0.0
    for _ in range(4):  # four connections that did not last
        assert schedule.next_to_open(now) == 0
        schedule.opened(0, now)
        now += 1.0 + schedule.lost(0, now + 1.0)
    assert policy.backoff.attempt == 4
    subscriptions = subscribed(PAIRS)
    assert schedule.next_to_open(now) == 0
    schedule.opened(0, now)
    subscriptions.resubscribe(["ETH/USD"], req_id=1_000_001)
    receive(subscriptions, ack("unsubscribe", "ETH/USD", 1))
    receive(subscriptions, ack("subscribe", "ETH/USD", 1))
    assert "ETH/USD" in subscriptions.subscribed and policy.backoff.attempt == 4
    schedule.lost(0, now + 5.0)  # dropped 5 s later: the backoff keeps growing
    assert policy.backoff.attempt == 5 and policy.backoff.ceiling() == 32
