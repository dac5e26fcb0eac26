"""Provenance (`origin`) and gap events: the source's messages, the dedupe step, the split."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from sources.kraken.config import SourceConfig
from sources.kraken.engine import Engine
from sources.kraken.feed import Fetch, Hole, HoleReason, RestFailure
from sources.kraken.gaps import GAP_REASONS, GapEvents, gap_event
from sources.kraken.publish import Publisher
from sources.kraken.source import KrakenTradesSource
from sources.kraken.trade import ExactFloat, Trade
from sources.steps.dedupe import DropPublished
from sources.steps.gaps import GapWriter, gap_timestamp_ms, is_trades, trades_of
from sources.steps.normalize import normalize_trades
from tests.support.core import Driver, FakeRest, make_feed, trade, trades
from tests.support.schemas import assert_valid
from tests.support.state import DictState

PAIRS = ("BTC/USD", "ETH/USD")


# --- the reason of each kind of hole --------------------------------------------------------


def holes_of(driver: Driver) -> list[tuple[int, int, str]]:
    return [(h.first_id, h.last_id, h.reason.value) for h in driver.holes]


def test_every_kind_of_hole_the_core_makes_has_its_reason_code() -> None:
    # larger than max_gap (a leap its successor confirms)
    driver = Driver(make_feed(max_gap=100))
    driver.live(trades(range(1, 11)))
    driver.live(trades(range(500, 502)))
    assert holes_of(driver) == [(11, 499, "max_gap")]
    # repair off
    driver = Driver(make_feed(repair=False))
    driver.live(trades(range(1, 11)))
    driver.live(trades(range(20, 22)))
    assert holes_of(driver) == [(11, 19, "repair_off")]
    # REST lacks a row in the middle, and the end of the gap (it has what follows)
    rest = FakeRest({p: trades(range(1, 400), p) for p in PAIRS})
    rest.missing.update(("BTC/USD", i) for i in (150, *range(160, 300)))
    driver = Driver(make_feed(), rest)
    driver.live(trades(range(1, 101)))
    driver.live(trades(range(300, 305)))
    driver.run_until_idle()
    assert holes_of(driver) == [(150, 150, "rest_lacks"), (160, 299, "rest_lacks")]
    # a row REST serves broken on every read
    rest = FakeRest({p: trades(range(1, 400), p) for p in PAIRS})
    rest.broken["BTC/USD", 120] = None
    driver = Driver(make_feed(retry_initial=1.0), rest)
    driver.live(trades(range(1, 101)))
    driver.live(trades(range(300, 305)))
    driver.run_until_idle()
    assert holes_of(driver) == [(120, 120, "unreadable")]
    # failures, however many, are never a hole (tests/unit/test_proof.py); `abandoned` is
    # only what versions before 0.2 wrote
    assert set(GAP_REASONS) == {r.value for r in HoleReason} >= {"abandoned", "regression"}


def test_a_gap_event_names_the_range_the_times_around_it_and_validates() -> None:
    hole = Hole("BTC/USD", 11, 499, HoleReason.MAX_GAP, "larger than max_gap", 1_700_000_000_100)
    event = gap_event(hole, 1_700_000_005_000, 1_700_000_009_999)
    assert event == {
        "pair": "BTC/USD",
        "first_trade_id": 11,
        "last_trade_id": 499,
        "count": 489,
        "previous_timestamp_ms": 1_700_000_000_100,
        "next_timestamp_ms": 1_700_000_005_000,
        "reason": "max_gap",
        "detail": "larger than max_gap",
        "detected_at_ms": 1_700_000_009_999,
    }
    unknown_after = gap_event(
        Hole("ETH/USD", 1, 1, HoleReason.UNREADABLE, "broken on 3 reads", None), None, 5
    )
    assert_valid([event, unknown_after], "gap.v1")
    assert gap_timestamp_ms(event) == 1_700_000_000_100
    assert gap_timestamp_ms(unknown_after) == 5


def test_gap_events_wait_for_the_next_trade_of_their_pair_within_a_round() -> None:
    events = GapEvents()
    assert not events
    assert (
        events.hole(Hole("BTC/USD", 5, 6, HoleReason.REPAIR_OFF, "repair is off", 100), 999) is None
    )
    assert events and events.before("ETH/USD", 1) is None  # another pair
    event = events.before("BTC/USD", 170)
    assert event is not None and event["next_timestamp_ms"] == 170
    assert not events
    events.hole(Hole("BTC/USD", 5, 6, HoleReason.REPAIR_OFF, "repair is off", 100), 999)
    earlier = events.hole(
        Hole("BTC/USD", 7, 9, HoleReason.REPAIR_OFF, "repair is off", 100), 999
    )  # no trade between
    assert earlier is not None and earlier["last_trade_id"] == 6
    assert earlier["next_timestamp_ms"] is None
    [last] = events.rest()
    assert (last["first_trade_id"], last["next_timestamp_ms"]) == (7, None)
    assert not events


# --- the source's messages ------------------------------------------------------------------


class Written:
    """The source topic as a list: what the publisher produced, through the topic's serializer."""

    def __init__(self) -> None:
        config = SourceConfig(pairs=PAIRS, rest_url=None)
        self.topic = KrakenTradesSource(config).default_topic()
        self.sent: list[tuple[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []

    def produce(self, key: str, value: Any, headers: Any) -> None:
        message = self.topic.serialize(key=key, value=value)
        self.sent.append((message.key.decode(), orjson.loads(message.value)))

    def engine(
        self, *, repair: bool = False, decimal_strings: bool = False, fetcher: Any = None
    ) -> Engine:
        """An engine that publishes here (no socket, no thread: REST answers by `fetcher`)."""
        config = SourceConfig(
            pairs=PAIRS,
            rest_url="http://rest.invalid" if repair else None,
            decimal_strings=decimal_strings,
        )
        publisher = Publisher(
            self.produce, lambda: None, self.checkpoints.append, decimal_strings=decimal_strings
        )
        return Engine(config, {}, publisher, fetcher=fetcher)


def test_the_source_writes_origin_and_each_gap_once_just_before_the_trades_after_it() -> None:
    source = Written()
    engine = source.engine()
    engine.feed.receive(trades(range(1, 4)), 0.0)
    engine.feed.receive([*trades(range(10, 12)), *trades(range(1, 3), "ETH/USD")], 0.0)
    engine.pump(0.0)
    kinds = [
        (key, "gap" if isinstance(v, dict) else [t["trade_id"] for t in v])
        for key, v in source.sent
    ]
    assert kinds == [
        ("BTC/USD", [1, 2, 3]),
        ("BTC/USD", "gap"),
        ("BTC/USD", [10, 11]),
        ("ETH/USD", [1, 2]),
    ]
    gap = source.sent[1][1]
    assert (gap["first_trade_id"], gap["last_trade_id"], gap["reason"]) == (4, 9, "repair_off")
    assert gap["previous_timestamp_ms"] == trade(3).timestamp_ms
    assert gap["next_timestamp_ms"] == trade(10).timestamp_ms
    assert all("origin" not in t for _, v in source.sent if isinstance(v, list) for t in v)


class InstantFetcher:
    """The `PageFetcher` the source drives, answering each page at once from a `FakeRest`."""

    def __init__(self, rest: FakeRest) -> None:
        self.rest = rest
        self.done: list[SimpleNamespace] = []

    def submit(self, request: Any) -> None:
        fetch = Fetch(request.request_id, request.pair, request.since_ns, request.count)
        rows, last = self.rest.answer(fetch)
        self.done.append(
            SimpleNamespace(
                request_id=request.request_id,
                rows=rows,
                last_ns=last,
                error=None,
                failure=RestFailure.PASSING,
                bad_rows=(),
            )
        )

    def results(self) -> list[SimpleNamespace]:
        done, self.done = self.done, []
        return done

    def cancel(self) -> None:
        self.done.clear()


def test_repaired_trades_are_marked_rest_and_live_ones_ws() -> None:
    source = Written()
    rest = InstantFetcher(FakeRest({p: trades(range(1, 40), p) for p in PAIRS}))
    engine = source.engine(repair=True, fetcher=rest)  # type: ignore[arg-type]
    engine.feed.receive(trades(range(1, 5)), 0.0)
    engine.feed.receive(trades(range(30, 33)), 0.0)  # gap 5..29, fetched from REST
    for step in range(10):
        engine.pump(float(step))
    assert source.checkpoints[-1]["BTC/USD"][0] == 32  # positions saved after delivery
    origin = {t["trade_id"]: t.get("origin", "ws") for _, v in source.sent for t in v}
    assert origin == {i: "rest" if 5 <= i <= 29 else "ws" for i in range(1, 33)}
    records = normalize_trades([t for _, v in source.sent for t in v])
    assert_valid(records, "trade.v1")


def test_decimal_strings_write_kraken_s_text() -> None:
    source = Written()
    engine = source.engine(decimal_strings=True)
    exact = Trade(
        "BTC/USD",
        "buy",
        ExactFloat("12345678.123456789"),
        ExactFloat("0.10000000"),
        "limit",
        1,
        "2023-11-14T22:13:20.000000Z",
        1_700_000_000_000,
    )
    engine.feed.receive([exact], 0.0)
    engine.pump(0.0)
    [(_, [message])] = source.sent
    assert (message["price"], message["qty"]) == ("12345678.123456789", "0.1")
    assert_valid(normalize_trades([message]), "trade.v1")


# --- the dataframe: dedupe and the split ----------------------------------------------------


def message(ids: range, pair: str = "BTC/USD") -> list[dict[str, Any]]:
    return [t.to_message() for t in trades(ids, pair)]


def gap(first: int, last: int, pair: str = "BTC/USD") -> dict[str, Any]:
    return gap_event(Hole(pair, first, last, HoleReason.REPAIR_OFF, "repair is off", 1), 2, 3)


def test_dedupe_lets_a_gap_through_once_as_the_trades_it_stands_for() -> None:
    dedupe, state = DropPublished(), DictState()
    assert [t["trade_id"] for t in dedupe(message(range(1, 4)), state)] == [1, 2, 3]
    assert dedupe(gap(4, 9), state) == gap(4, 9)
    assert dedupe(gap(4, 9), state) is None  # replayed: already through
    assert dedupe(message(range(5, 8)), state) == []  # inside the gap: nothing new
    assert [t["trade_id"] for t in dedupe(message(range(9, 12)), state)] == [10, 11]
    assert dedupe(gap(4, 9), state) is None


def test_a_gap_event_is_never_dropped_because_of_the_trades_after_it() -> None:
    """Issue 16, failure 8: a crash delivered trade 201 but not the gap event 101..200; the
    output's seed (trades up to 201) used to drop the replayed event for good."""
    seeded = DropPublished({"BTC/USD": 201})  # trades after the gap are in the output already
    state = DictState()
    assert seeded(gap(101, 200), state) == gap(101, 200)
    assert seeded(gap(101, 200), state) is None  # a second replay: it went through already
    assert seeded(message(range(150, 203)), state)[0]["trade_id"] == 202


def test_a_regression_event_starts_the_pair_over_once() -> None:
    dedupe, state = DropPublished({"BTC/USD": 500}), DictState()
    assert [t["trade_id"] for t in dedupe(message(range(499, 502)), state)] == [501]
    event = gap_event(Hole("BTC/USD", 1, 501, HoleReason.REGRESSION, "went back", 1), 2, 3)
    assert dedupe(event, state) == event
    assert [t["trade_id"] for t in dedupe(message(range(1, 4)), state)] == [1, 2, 3]
    assert dedupe(event, state) is None  # replayed: the sequence does not start over again
    assert dedupe(message(range(1, 5)), state)[0]["trade_id"] == 4


def test_the_gaps_topic_seed_drops_a_replayed_gap_event_but_never_a_trade() -> None:
    """A crash after a gap event was written, before the pair's next trade: the restarted
    dataframe does not write the event again; the trades around it still go through."""
    dedupe, state = DropPublished(gap_seed={"BTC/USD": 9}), DictState()
    assert [t["trade_id"] for t in dedupe(message(range(1, 4)), state)] == [1, 2, 3]
    assert dedupe(gap(4, 9), state) is None  # already in the gaps topic
    assert [t["trade_id"] for t in dedupe(message(range(10, 12)), state)] == [10, 11]
    # a seed from somebody else's gap (a shared gaps topic) never drops a trade
    shared = DropPublished(gap_seed={"BTC/USD": 1_000})
    assert [t["trade_id"] for t in shared(message(range(1, 4)), DictState())] == [1, 2, 3]


class FakeProducer:
    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(self, **kwargs: Any) -> None:
        self.produced.append(kwargs)


class FakeDataFrame:
    def __init__(self) -> None:
        self.processing_context = type("Context", (), {"producer": FakeProducer()})()


def test_gap_events_go_to_the_gaps_topic_and_only_trade_messages_go_on() -> None:
    from quixstreams.models.topics import Topic

    sdf = FakeDataFrame()
    topic = Topic("gaps", key_serializer="string", value_serializer="json")
    writer = GapWriter(sdf, topic)  # type: ignore[arg-type]
    for value in (message(range(1, 3)), gap(3, 4), None, []):
        writer(value, "BTC/USD", 0, None)
    [produced] = sdf.processing_context.producer.produced
    assert produced["topic"] == "gaps" and produced["key"] == b"BTC/USD"
    assert orjson.loads(produced["value"]) == gap(3, 4)
    assert produced["timestamp"] == 1 and writer.written == 1
    assert [is_trades(v) for v in (message(range(1, 3)), gap(3, 4), None, [])] == [
        True,
        False,
        False,
        True,
    ]


def test_only_trade_messages_of_the_pairs_go_on_to_be_expanded() -> None:
    of_pairs = trades_of(["BTC/USD"])
    kept = [message(range(1, 3)), message(range(3, 4))]
    dropped = [message(range(1, 3), "ETH/USD"), gap(3, 4), None, []]
    assert [of_pairs(v) for v in kept + dropped] == [True] * len(kept) + [False] * len(dropped)


@pytest.mark.parametrize("origin", ["ws", "rest"])
def test_normalize_carries_the_origin(origin: str) -> None:
    [record] = normalize_trades([trade(7).to_message(origin)])
    assert record["origin"] == origin
