"""The sans-I/O core (`Feed`): driven with trades, REST pages and a clock; no socket, no thread."""

from __future__ import annotations

import logging
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.kraken.backoff import Backoff, ReconnectPolicy
from sources.kraken.feed import HoleReason, RestFailure
from tests.support.core import (
    BASE_MS,
    PAIRS,
    Driver,
    FakeRest,
    make_feed,
    trade,
    trades,
)
from tests.support.examples import examples

# --- live ---------------------------------------------------------------------------------


def test_live_trades_go_out_once_in_order_and_replays_are_dropped() -> None:
    driver = Driver(make_feed())
    driver.live(trades(range(1, 51)) + trades(range(1, 31), "ETH/USD"))
    driver.live(trades(range(1, 61)))  # a snapshot after a reconnect: 1..50 again, 51..60 new
    assert driver.published["BTC/USD"] == list(range(1, 61))
    assert driver.published["ETH/USD"] == list(range(1, 31))
    assert driver.feed.stats.duplicates == 50
    assert driver.fetches == 0


def test_a_gap_is_fetched_while_the_pairs_live_trades_wait_and_others_flow() -> None:
    history = {p: trades(range(1, 501), p) for p in PAIRS}
    driver = Driver(make_feed(), FakeRest(history))
    driver.live(trades(range(1, 101)))
    driver.live(trades(range(300, 320)))  # 101..299 missed
    driver.live(trades(range(1, 50), "ETH/USD"))  # the other pair is not held
    assert driver.published["ETH/USD"] == list(range(1, 50))
    assert driver.published["BTC/USD"] == list(range(1, 101))
    driver.live(trades(range(320, 330)))  # held behind the repair
    driver.run_until_idle()
    assert driver.published["BTC/USD"] == list(range(1, 330))
    origins = driver.origins["BTC/USD"]
    assert set(origins[100:299]) == {"rest"} and set(origins[299:]) == {"ws"}
    assert driver.feed.stats.repaired == 1 and not driver.holes


def test_two_pairs_history_behind_a_slow_rest_both_complete() -> None:
    """Failure 1: jobs queued at once on one worker used to be abandoned after 60 s."""
    history = {p: trades(range(1, 80_001), p) for p in PAIRS}
    feed = make_feed(backfill_since_ns=0, repair_timeout=60.0)
    driver = Driver(feed, FakeRest(history), page_delay=1.2)
    driver.run_until_idle(seconds=0.4)
    for pair in PAIRS:
        assert driver.published[pair] == list(range(1, 80_001))
    assert not driver.holes
    assert [h.complete for h in driver.history] == [True, True]
    # fair: the pairs took turns, page by page
    pairs_in_order = [f.pair for f in driver.rest.calls[:10]]  # type: ignore[union-attr]
    assert pairs_in_order == ["BTC/USD", "ETH/USD"] * 5


def test_live_gap_repair_goes_before_history_and_is_not_starved() -> None:
    history = {p: trades(range(1, 20_001), p) for p in PAIRS}
    feed = make_feed(backfill_since_ns=0, positions={"ETH/USD": (10_000, BASE_MS + 100_000)})
    driver = Driver(feed, FakeRest(history))
    driver.step()
    driver.step(1.0)  # BTC history is under way; ETH is live
    driver.live(trades(range(10_500, 10_510), "ETH/USD"))  # ETH gap 10_001..10_499
    sent_before = len(driver.fetch_log)  # one BTC page is in flight: it finishes first
    driver.step(1.1)
    driver.step(1.1)
    assert driver.fetch_log[sent_before].pair == "ETH/USD"
    assert driver.published["ETH/USD"][-1] == 10_509


def test_a_row_rest_lacks_is_a_proven_hole_of_exactly_that_trade_and_the_page_goes_on() -> None:
    history = {p: trades(range(1, 401), p) for p in PAIRS}
    rest = FakeRest(history)
    rest.missing.add(("BTC/USD", 150))
    driver = Driver(make_feed(), rest)
    driver.live(trades(range(1, 101)))
    driver.live(trades(range(300, 310)))
    driver.run_until_idle()
    assert [(h.first_id, h.last_id, h.reason) for h in driver.holes] == [
        (150, 150, HoleReason.REST_LACKS)
    ]
    assert driver.published["BTC/USD"] == [i for i in range(1, 310) if i != 150]
    assert any("150..150" in n.message and n.level == logging.ERROR for n in driver.notices)


def test_held_trades_stay_bounded_and_messages_small_and_nothing_is_lost() -> None:
    """Failure 3: 50,000 held trades used to go out as one message too large for Kafka."""
    history = {p: trades(range(1, 70_001), p) for p in PAIRS}
    feed = make_feed(max_held=10_000, message_trades=1000)
    driver = Driver(feed, FakeRest(history), page_delay=1.0)
    driver.live(trades(range(1, 11)))
    driver.live(trades(range(15_001, 15_002)))  # gap 11..15_000
    for start in range(15_002, 65_002, 500):  # 50,000 live trades arrive during the repair
        driver.live(trades(range(start, start + 500)))
        assert len(driver.feed.lane("BTC/USD").held) <= 10_000
        driver.step(0.05)
    driver.run_until_idle()  # the catch-up goes up to the last trade received (65,001)
    driver.live(trades(range(70_001 - 5, 70_001)))
    driver.run_until_idle()
    assert driver.published["BTC/USD"] == list(range(1, 70_001))
    assert max(driver.message_sizes) <= 1000
    assert driver.feed.stats.let_go > 0 and not driver.holes


def test_a_lower_trade_id_with_a_newer_time_is_reported_not_hidden() -> None:
    driver = Driver(make_feed())
    driver.live(trades(range(1, 11)))
    driver.live([trade(3, ms=BASE_MS + 10_000)])  # lower id, newer time: not a replay
    driver.live(trades(range(11, 21)))
    assert driver.published["BTC/USD"] == list(range(1, 21))
    assert driver.feed.stats.out_of_sequence == 1 and driver.feed.stats.duplicates == 0
    assert any("trade_id 3" in n.message and n.level == logging.ERROR for n in driver.notices)


def test_a_poison_trade_id_is_dropped_and_the_real_sequence_goes_on() -> None:
    """Failure 7: 2**62 used to become the position, and every real trade a 'duplicate'."""
    driver = Driver(make_feed(max_gap=1000), FakeRest({p: [] for p in PAIRS}))
    driver.live(trades(range(1, 11)))
    driver.live([trade(2**62)])
    driver.live(trades(range(11, 21)))
    assert driver.published["BTC/USD"] == list(range(1, 21))
    assert driver.feed.lane("BTC/USD").position[0] == 20  # type: ignore[index]
    assert driver.feed.stats.out_of_sequence == 1 and driver.fetches == 0


def test_a_real_leap_beyond_max_gap_is_confirmed_by_its_successor() -> None:
    driver = Driver(make_feed(max_gap=1000))
    driver.live(trades(range(1, 11)))
    driver.live(trades(range(5000, 5003)))
    assert driver.published["BTC/USD"] == [*range(1, 11), 5000, 5001, 5002]
    assert [(h.first_id, h.last_id, h.reason) for h in driver.holes] == [
        (11, 4999, HoleReason.MAX_GAP)
    ]


def test_a_failed_repair_is_retried_and_completes() -> None:
    history = {p: trades(range(1, 301), p) for p in PAIRS}
    driver = Driver(make_feed(retry_initial=2.0), FakeRest(history))
    driver.live(trades(range(1, 51)))
    driver.fail_next = 3
    driver.live(trades(range(200, 210)))
    driver.run_until_idle()
    assert driver.published["BTC/USD"] == list(range(1, 210))
    assert not driver.holes and driver.feed.stats.rest_failures == 3


def test_a_stalled_page_is_cancelled_and_retried() -> None:
    history = {p: trades(range(1, 301), p) for p in PAIRS}
    driver = Driver(make_feed(repair_timeout=5.0), FakeRest(history))
    driver.live(trades(range(1, 51)))
    driver.silent_next = 1
    driver.live(trades(range(200, 210)))
    driver.run_until_idle()
    assert driver.cancelled == 1
    assert driver.published["BTC/USD"] == list(range(1, 210))


def test_failures_are_a_delay_never_a_hole_however_many() -> None:
    """Failure 1 of issue 16: one `EGeneral:Internal error` used to make a whole gap a hole."""
    history = {p: trades(range(1, 301), p) for p in PAIRS}
    driver = Driver(make_feed(retry_initial=1.0, retry_cap=8.0), FakeRest(history))
    driver.error = "Kraken said EGeneral:Internal error"
    driver.live(trades(range(1, 51)))
    driver.fail_next = 40
    driver.live(trades(range(200, 210)))
    driver.run_until_idle()
    assert driver.fetches == 41 and not driver.holes
    assert driver.published["BTC/USD"] == list(range(1, 210))
    waits = [b.request_id for b in driver.fetch_log]
    assert len(waits) == 41  # each failure waited: at most every retry_cap seconds at the end
    assert driver.now > 8.0 * 30


def test_rest_that_lacks_the_end_of_a_gap_is_asked_again_before_giving_up() -> None:
    history = {p: trades(range(1, 150), p) for p in PAIRS}  # REST lags: lacks 150..199
    rest = FakeRest(history)
    driver = Driver(make_feed(retry_initial=1.0), rest)
    driver.live(trades(range(1, 51)))
    driver.live(trades(range(200, 205)))
    driver.step(1.0)
    driver.step(1.0)
    rest.history["BTC/USD"] = trades(range(1, 300))  # REST has caught up meanwhile
    driver.run_until_idle()
    assert driver.published["BTC/USD"] == list(range(1, 205))
    assert not driver.holes


def test_trades_of_symbols_not_subscribed_are_dropped_without_a_repair() -> None:
    driver = Driver(make_feed())
    driver.live(trades(range(1, 5)))
    driver.live(trades(range(100, 105), "btc/usd") + trades(range(100, 105), "BTC/USD\u200b"))
    assert driver.published.keys() == {"BTC/USD"} and driver.fetches == 0
    assert driver.feed.stats.unexpected_symbol == 10


def test_history_of_a_pair_rest_does_not_know_ends_incomplete() -> None:
    driver = Driver(make_feed(backfill_since_ns=0), FakeRest({p: [] for p in PAIRS}))
    driver.step()
    _, fetch = driver.pending  # type: ignore[misc]
    driver.pending = None
    driver.feed.page(
        fetch.request_id, [], 0, driver.now, error="no such pair", failure=RestFailure.UNKNOWN_PAIR
    )
    driver.drain()
    assert driver.history[0].pair == fetch.pair and driver.history[0].complete is False
    assert driver.feed.backfill_failed == {fetch.pair}


def test_the_reconnect_backoff_grows_while_connections_do_not_last() -> None:
    """Failure 6: an ack used to reset the backoff, so ack-then-drop meant ~1 connection/s."""
    policy = ReconnectPolicy(Backoff(initial=1.0, cap=60.0, rng=random.Random(1)), 30.0)
    now, ceilings = 0.0, []
    for _ in range(8):  # connect, get acked, dropped a second later
        policy.connected(now)
        now += 1.0
        ceilings.append(policy.backoff.ceiling())
        now += policy.next_delay(now)
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60]
    policy.connected(now)  # a connection that lasts: the next failure starts over
    assert policy.next_delay(now + 31) <= 1.0


# --- the promise, for any interleaving --------------------------------------------------


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PAIRS), st.integers(1, 30), st.integers(0, 60)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 3),
)
def test_any_mix_of_replays_gaps_and_failures_publishes_each_trade_once_in_order(
    steps: list[tuple[str, int, int]], failures: int
) -> None:
    history = {p: trades(range(1, 3000), p) for p in PAIRS}
    driver = Driver(make_feed(retry_initial=0.5), FakeRest(history))
    driver.fail_next = failures
    head = dict.fromkeys(PAIRS, 0)
    first: dict[str, int] = {}  # a pair's sequence starts at the first trade seen
    for pair, length, jump_back_or_ahead in steps:
        start = max(1, head[pair] + 1 + jump_back_or_ahead - 30)  # replays and gaps alike
        first.setdefault(pair, start)
        driver.live(trades(range(start, start + length), pair))
        head[pair] = max(head[pair], start + length - 1)
        driver.step(0.3)
    driver.run_until_idle()
    for pair, ids in driver.published.items():
        assert ids == list(range(first[pair], head[pair] + 1)), pair
    assert not driver.holes
