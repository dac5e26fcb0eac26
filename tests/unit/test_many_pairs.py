"""Hundreds of pairs, without a socket: pair selection (syntax, patterns, `all`), connection
planning, and the core's fairness when hundreds of pairs need REST at once."""

from __future__ import annotations

import pytest

from sources.kraken.config import ALL, ConfigError, explicit_symbols, has_patterns, parse_pairs
from sources.kraken.connections import chunked, plan_connections
from sources.kraken.feed import HELD_TRADE_BYTES, Feed, FeedConfig
from sources.kraken.instruments import Instrument, Resolution, resolve
from tests.support.core import BASE_MS, Driver, FakeRest, trade, trades

# --- `pairs`: syntax ----------------------------------------------------------------------


def test_parse_pairs_takes_symbols_patterns_and_all_mixed() -> None:
    assert parse_pairs(" btc/usd, */eur ,ETH/*, All, BTC/USD") == (
        "BTC/USD",
        "*/EUR",
        "ETH/*",
        ALL,
    )
    assert parse_pairs("*/*") == (ALL,)
    assert has_patterns(parse_pairs("BTC/USD,*/USD")) and not has_patterns(("BTC/USD",))
    assert explicit_symbols(parse_pairs("BTC/USD,*/USD,all,ETH/EUR")) == ("BTC/USD", "ETH/EUR")


@pytest.mark.parametrize(
    "raw", ["BTC/", "**", "BTCUSD", "B*C/USD", "*", "*/", "BTC/USD/EUR", "BTC/U$D", "al l"]
)
def test_a_typo_in_pairs_fails_naming_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^pairs: .* is not a Kraken v2 symbol"):
        parse_pairs(f"ETH/USD,{raw}")


# --- resolution against Kraken's list ------------------------------------------------------

LISTED = [
    Instrument("BTC/USD", "online"),
    Instrument("ETH/USD", "online"),
    Instrument("SOL/USD", "maintenance"),
    Instrument("LUNA/USD", "delisted"),
    Instrument("BTC/EUR", "online"),
    Instrument("ETH/EUR", "cancel_only"),
    Instrument("ETH/BTC", "online"),
    Instrument("X.Y/USD", "online"),  # a symbol this pipeline would not accept
]


def test_a_pattern_takes_online_pairs_and_says_why_others_are_left_out() -> None:
    resolution = resolve(("*/USD",), LISTED)
    assert resolution.pairs == ("BTC/USD", "ETH/USD")
    assert dict(resolution.left_out) == {
        "LUNA/USD": "status delisted",
        "SOL/USD": "status maintenance",
        "X.Y/USD": "not a BASE/QUOTE symbol",
    }
    assert resolution.from_patterns == {"BTC/USD", "ETH/USD"}


def test_all_takes_every_online_pair_and_base_patterns_work() -> None:
    assert resolve((ALL,), LISTED).pairs == ("BTC/EUR", "BTC/USD", "ETH/BTC", "ETH/USD")
    assert resolve(("ETH/*",), LISTED).pairs == ("ETH/BTC", "ETH/USD")
    assert dict(resolve(("ETH/*",), LISTED).left_out) == {"ETH/EUR": "status cancel_only"}


def test_explicit_symbols_come_first_are_kept_whatever_their_status_and_are_not_optional() -> None:
    resolution = resolve(("SOL/USD", "*/USD", "BTC/EUR"), LISTED)
    assert resolution.pairs == ("SOL/USD", "BTC/USD", "ETH/USD", "BTC/EUR")
    assert "SOL/USD" not in dict(resolution.left_out)  # named: kept, though in maintenance
    assert resolution.from_patterns == {"BTC/USD", "ETH/USD"}  # BTC/EUR is named: a refusal stops


def test_unknown_explicit_symbols_and_patterns_matching_nothing_are_reported() -> None:
    resolution = resolve(("FOO/BAR", "*/JPY", "BTC/USD"), LISTED)
    assert resolution.unknown == ("FOO/BAR",)
    assert resolution.unmatched == ("*/JPY",)
    assert resolution.pairs == ("BTC/USD",)


def test_explicit_symbols_only_need_no_list() -> None:
    assert resolve(("BTC/USD", "FOO/BAR"), None) == Resolution(("BTC/USD", "FOO/BAR"))
    with pytest.raises(ValueError):
        resolve(("*/USD",), None)


# --- connections and subscribe requests ---------------------------------------------------


def symbols(count: int) -> tuple[str, ...]:
    return tuple(f"C{i:03d}/USD" for i in range(count))


@pytest.mark.parametrize(
    ("count", "per_connection", "sizes"),
    [
        (2, 100, [2]),
        (100, 100, [100]),
        (101, 100, [51, 50]),
        (250, 100, [84, 83, 83]),
        (300, 100, [100, 100, 100]),
        (1000, 100, [100] * 10),
        (5, 1, [1] * 5),
    ],
)
def test_pairs_spread_over_as_few_connections_as_allowed_in_balanced_sizes(
    count: int, per_connection: int, sizes: list[int]
) -> None:
    pairs = symbols(count)
    plan = plan_connections(pairs, per_connection)
    assert [len(p) for p in plan] == sizes
    assert tuple(p for connection in plan for p in connection) == pairs  # each once, in order


def test_subscribe_requests_hold_at_most_subscribe_batch_symbols() -> None:
    pairs = symbols(100)
    assert [len(c) for c in chunked(pairs, 50)] == [50, 50]
    assert [len(c) for c in chunked(pairs[:84], 50)] == [50, 34]
    assert chunked(pairs[:2], 50) == [pairs[:2]]
    assert chunked(pairs[:3], 0) == [pairs[:3]]  # 0: all in one request
    assert chunked((), 50) == []


# --- fairness of repairs with 300 pairs ---------------------------------------------------

N = 300
MANY = symbols(N)


def many_feed(**config: object) -> Feed:
    positions = {pair: (100, BASE_MS + 1000) for pair in MANY}  # a restart: every pair known
    return Feed(FeedConfig(pairs=MANY, **config), positions)  # type: ignore[arg-type]


def test_after_a_restart_every_one_of_300_pairs_gets_its_first_page_within_300_calls() -> None:
    history = {pair: trades(range(1, 301), pair) for pair in MANY}
    driver = Driver(many_feed(), FakeRest(history), page_delay=1.0)
    for pair in MANY:  # the first snapshot of each pair leaps past the saved position
        driver.live(trades(range(250, 260), pair))
    driver.run_until_idle(seconds=1.0)
    first_calls = [fetch.pair for fetch in driver.fetch_log[:N]]
    assert sorted(first_calls) == sorted(MANY)  # each pair once, in the first round
    assert driver.fetches == N  # one page each: nothing asked twice
    for pair in MANY:
        assert driver.published[pair] == list(range(101, 260)), pair
    # worst case: N pages at one REST call a second (README, Pair selection)
    assert driver.now <= N * 1.0 + 2


def test_a_100_page_gap_does_not_delay_the_1_page_gaps_of_299_pairs_beyond_one_round() -> None:
    long, others = MANY[0], MANY[1:]
    history = {pair: trades(range(1, 301), pair) for pair in others}
    history[long] = trades(range(1, 100_302), long)
    driver = Driver(many_feed(max_gap=200_000), FakeRest(history), page_delay=1.0)
    driver.live(trades(range(100_201, 100_211), long))  # 100,100 missing: 101 pages
    for pair in others:
        driver.live(trades(range(250, 260), pair))
    for _ in range(N + 1):
        driver.step(1.0)
    log = [fetch.pair for fetch in driver.fetch_log]
    assert log[:N].count(long) <= 2  # its first page, maybe one more: never a run of them
    for pair in others:  # every short gap closed within the first round
        assert driver.published[pair] == list(range(101, 260)), pair
    assert driver.feed.repairing and set(log[N:]) == {long}  # then the long one alone
    driver.run_until_idle(seconds=1.0)
    assert driver.published[long] == list(range(101, 100_211))
    assert not driver.holes


def test_pairs_without_a_gap_publish_at_once_while_300_others_are_repaired() -> None:
    quiet = tuple(f"Q{i:02d}/EUR" for i in range(20))
    history = {pair: trades(range(1, 301), pair) for pair in MANY}
    positions = {pair: (100, BASE_MS + 1000) for pair in MANY}
    feed = Feed(FeedConfig(pairs=MANY + quiet), positions)
    driver = Driver(feed, FakeRest(history), page_delay=1.0)
    for pair in MANY:
        driver.live(trades(range(250, 260), pair))
    for step in range(30):  # mid-repair: each live batch of an untouched pair goes out at once
        for pair in quiet:
            driver.live(trades(range(1 + 5 * step, 6 + 5 * step), pair))
            assert driver.published[pair] == list(range(1, 6 + 5 * step))
        driver.step(1.0)
    assert driver.feed.repairing  # the repairs are still going on meanwhile


def test_held_trades_stay_within_the_bound_of_all_pairs_and_nothing_is_lost() -> None:
    """Per-pair bounds alone allow N x max_held trades in memory; `max_held_bytes` caps the
    sum: the pairs holding most are let go (REST brings their trades instead)."""
    history = {pair: trades(range(1, 181), pair) for pair in MANY}  # REST: up to the present
    feed = many_feed(max_held=100, max_held_bytes=2_000 * HELD_TRADE_BYTES)
    driver = Driver(feed, FakeRest(history), page_delay=1.0)
    for pair in MANY:
        driver.live(trades(range(150, 151), pair))  # a gap each: 101..149
    for start in range(151, 181):  # 30 more live trades per pair arrive during the repairs
        for pair in MANY:
            driver.live([trade(start, pair)])
            assert feed.held() <= 2_000
            held = sum(len(feed.lane(p).held) for p in MANY)
            assert held == feed.held()  # the running count the bound reads is right
        driver.step(0.2)
    assert feed.stats.let_go > 0
    driver.run_until_idle(seconds=1.0)
    for pair in MANY:  # REST brought what was let go
        driver.live(trades(range(181, 186), pair))
        assert driver.published[pair] == list(range(101, 186)), pair
    assert not driver.holes and feed.held() == 0


# --- the summary line ----------------------------------------------------------------------


def _summary(published: dict[str, int]) -> str:
    from sources.kraken.engine import summary_line
    from sources.kraken.session import SessionStats

    feed = Feed(FeedConfig(pairs=tuple(sorted(published))))
    feed.stats.published.update(published)
    return summary_line(feed, SessionStats(), 0)


def test_the_summary_line_names_every_pair_when_few() -> None:
    line = _summary({"BTC/USD": 5, "ETH/USD": 7})
    assert line.startswith("trades: BTC/USD=5 ETH/USD=7 | total=12 ")


def test_the_summary_line_stays_short_with_hundreds_of_pairs() -> None:
    published = {f"P{n:03d}/USD": n for n in range(300)}
    line = _summary(published)
    assert f"total={sum(published.values())} " in line
    assert "300 pairs, busiest P299/USD=299 P298/USD=298" in line
    assert "P000/USD" not in line and len(line) < 1000
