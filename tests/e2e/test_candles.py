"""The candles pipeline: pure candle functions, settings, and `main.py` on a real broker."""

from __future__ import annotations

import random
import re
import signal
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from hypothesis import given
from hypothesis import strategies as st

from simulator import KrakenSimulator, Market
from sources.app.settings import ConfigError
from sources.app.variables import CANDLES
from sources.candles import CandlesSettings, add_trade, candle_record, is_trade, start_candle
from tests.support.candles import candles_pipeline
from tests.support.descriptors import declared_topics
from tests.support.kafka import (
    Record,
    consume,
    create_topic,
    recorded_creations,
    recording_env,
    topics_on_broker,
    unique,
)
from tests.support.pipeline import STARTED
from tests.support.schemas import assert_valid
from tests.support.trades import trades_pipeline

# ---------------------------------------------------------------------------------------
# The reference: candles computed the obvious way, from the whole list of a window's trades


def reference_candles(trades: Iterable[dict[str, Any]], candle_ms: int) -> dict[tuple, dict]:
    """{(pair, window_start_ms): candle} over `trades`, each window sorted by (time, id)."""
    windows: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for trade in trades:
        start = trade["timestamp_ms"] // candle_ms * candle_ms
        windows[(trade["pair"], start)].append(trade)
    candles = {}
    for (pair, start), group in windows.items():
        group = sorted(group, key=lambda t: (t["timestamp_ms"], t["trade_id"]))
        volume = sum(t["volume"] for t in group)
        candles[(pair, start)] = {
            "pair": pair,
            "open": group[0]["price"],
            "high": max(t["price"] for t in group),
            "low": min(t["price"] for t in group),
            "close": group[-1]["price"],
            "volume": volume,
            "trade_count": len(group),
            "vwap": sum(t["price"] * t["volume"] for t in group) / volume if volume else None,
            "window_start_ms": start,
            "window_end_ms": start + candle_ms,
            "first_trade_id": min(t["trade_id"] for t in group),
            "last_trade_id": max(t["trade_id"] for t in group),
        }
    return candles


def reference_complete(candles: dict[tuple, dict]) -> dict[tuple, bool]:
    """{(pair, window_start_ms): complete}: contiguous, and continuing the pair's previous
    candle (the first candle of a pair is not complete)."""
    complete, previous_last = {}, {}
    for (pair, start), candle in sorted(candles.items()):
        first, last = candle["first_trade_id"], candle["last_trade_id"]
        before = previous_last.get(pair)
        complete[(pair, start)] = (
            before is not None and first == before + 1 and candle["trade_count"] == last - first + 1
        )
        previous_last[pair] = last
    return complete


def assert_candle_equal(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Prices, counts and bounds exactly; sums up to float rounding (order differs);
    `complete` is checked apart (`reference_complete`)."""
    got = {k: v for k, v in got.items() if k != "complete"}
    assert set(got) == set(expected)
    for field in ("volume", "vwap"):
        assert got[field] == pytest.approx(expected[field], rel=1e-9), field
    exact = {k: v for k, v in got.items() if k not in ("volume", "vwap")}
    assert exact == {k: v for k, v in expected.items() if k not in ("volume", "vwap")}


def fold(trades: list[dict[str, Any]]) -> dict[str, Any]:
    """What the window does: initializer, then reducer, the state stored as JSON between."""
    state = start_candle(trades[0])
    for trade in trades[1:]:
        state = add_trade(orjson.loads(orjson.dumps(state)), trade)
    return state


def trade(pair: str, at_ms: int, trade_id: int, price: float, volume: float) -> dict[str, Any]:
    """A record as the trades pipeline writes it."""
    return {
        "pair": pair,
        "price": price,
        "volume": volume,
        "side": "buy",
        "order_type": "limit",
        "trade_id": trade_id,
        "timestamp_ms": at_ms,
        "timestamp": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(),
    }


# ---------------------------------------------------------------------------------------
# Unit tests


trades_in_a_window = st.lists(
    st.tuples(
        st.integers(0, 9_999),  # timestamp_ms within one 10 s window
        st.integers(1, 10**9),  # trade_id
        st.floats(0.01, 1e6, allow_nan=False),
        st.floats(0.0, 100.0, allow_nan=False, allow_subnormal=False),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda t: t[1],
)


@given(trades_in_a_window, st.randoms(use_true_random=False))
def test_a_candle_does_not_depend_on_arrival_order(rows: list[tuple], rnd: random.Random) -> None:
    trades = [trade("BTC/USD", at, tid, price, volume) for at, tid, price, volume in rows]
    rnd.shuffle(trades)
    got = candle_record({"start": 0, "end": 10_000, "value": fold(trades)})
    expected = reference_candles(trades, 10_000)[("BTC/USD", 0)]
    if expected["volume"] == 0:
        assert got["vwap"] is None
        got["vwap"] = expected["vwap"] = 0.0
    assert_candle_equal(got, expected)


def test_open_and_close_break_time_ties_by_trade_id() -> None:
    trades = [
        trade("ETH/USD", 500, 12, 3.0, 1.0),
        trade("ETH/USD", 500, 11, 2.0, 1.0),  # same time, lower id: the open
        trade("ETH/USD", 900, 13, 5.0, 1.0),
        trade("ETH/USD", 900, 14, 4.0, 1.0),  # same time, higher id: the close
        trade("ETH/USD", 700, 15, 9.0, 2.0),
    ]
    state = fold(trades)
    assert (state["open"], state["close"]) == (2.0, 4.0)
    record = candle_record({"start": 0, "end": 1000, "value": state})
    assert (record["high"], record["low"], record["trade_count"]) == (9.0, 2.0, 5)
    assert record["vwap"] == pytest.approx((3 + 2 + 5 + 4 + 18) / 6)


def test_the_reducer_does_not_change_its_input() -> None:
    state = start_candle(trade("BTC/USD", 5, 1, 10.0, 1.0))
    before = dict(state)
    add_trade(state, trade("BTC/USD", 1, 2, 20.0, 1.0))
    assert state == before


@pytest.mark.parametrize(
    "change",
    [
        {"price": "1.0"},
        {"price": 0},
        {"price": float("nan")},
        {"volume": -1.0},
        {"volume": True},
        {"trade_id": None},
        {"timestamp_ms": 1.5},
        {"pair": None},
    ],
)
def test_records_that_are_not_trades_are_recognised(change: dict[str, Any]) -> None:
    assert is_trade(trade("BTC/USD", 1, 1, 1.0, 1.0))
    assert not is_trade({**trade("BTC/USD", 1, 1, 1.0, 1.0), **change})
    assert not is_trade([1, 2]) and not is_trade(None)


def test_settings_defaults_and_case_insensitive_names() -> None:
    assert CandlesSettings.from_env({}) == CandlesSettings()
    defaults = CandlesSettings()
    assert (defaults.input, defaults.output, defaults.consumer_group) == (
        "trades",
        "candles",
        "kraken-candles",
    )
    assert (defaults.candle_ms, defaults.grace_ms) == (60_000, 10_000)
    settings = CandlesSettings.from_env(
        {
            "INPUT": "t",
            "Output": "c",
            "candle_seconds": "1.5",
            "GRACE_SECONDS": "0",
            "Quix__Broker__Address": "b:1",
            "Quix__Consumer_Group": "g",
        }
    )
    assert (settings.input, settings.output, settings.candle_ms, settings.grace_ms) == (
        "t",
        "c",
        1500,
        0,
    )
    assert (settings.broker_address, settings.consumer_group) == ("b:1", "g")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"candle_seconds": "0"}, "candle_seconds"),
        ({"candle_seconds": "soon"}, "candle_seconds"),
        ({"grace_seconds": "-1"}, "grace_seconds"),
        ({"grace_seconds": "inf"}, "grace_seconds"),
        ({"output": "bad topic"}, "output"),
        ({"input": "x", "output": "x"}, "output"),
        ({"stats_interval": "0"}, "stats_interval"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{named}:"):
        CandlesSettings.from_env(env)


# ---------------------------------------------------------------------------------------
# main.py on a real broker, fed a known trade sequence

CANDLE_MS = 10_000
GRACE_MS = 3_000
T0 = 1_700_000_000_000  # a window start (a multiple of CANDLE_MS)


def btc_arrivals() -> tuple[list[dict], list[dict]]:
    """BTC/USD: out-of-order trades inside grace, an empty window, a trade beyond grace.

    Returns (arrival order, the trades that arrive too late).
    """
    rows = {  # trade_id: (ms after T0, price, volume)
        1: (1_000, 100.0, 0.5),
        2: (2_500, 101.5, 0.25),
        3: (2_500, 99.25, 1.0),  # same time as #2, higher id
        4: (4_000, 102.0, 0.1),  # arrives after #7, inside grace: not the close
        5: (9_500, 98.0, 2.0),  # the close of window 0, though not the last to arrive
        6: (10_500, 97.0, 0.3),  # the open of window 1, arrives after #7
        7: (12_000, 96.5, 0.7),  # 12 000 - grace < 10 000: window 0 still open
        8: (15_000, 99.0, 1.1),  # arrives after #10
        9: (18_000, 120.0, 9.0),  # arrives after 35 000: window 1 closed -> late
        10: (19_999, 95.0, 0.2),  # the last millisecond of window 1
        # window 2 (20 000..30 000): no trade, no candle
        11: (30_000, 94.0, 0.4),  # the first millisecond of window 3
        12: (35_000, 93.5, 0.6),
    }
    order = [2, 1, 5, 3, 7, 6, 4, 10, 8, 11, 12, 9]
    arrivals = [trade("BTC/USD", T0 + rows[i][0], i, rows[i][1], rows[i][2]) for i in order]
    return arrivals, [arrivals[-1]]


def random_arrivals(
    pair: str, windows: list[int], rng: random.Random
) -> tuple[list[dict], list[dict]]:
    """Trades in the given windows, neighbours swapped inside a window, and one late trade."""
    times = sorted(
        T0 + w * CANDLE_MS + rng.randrange(CANDLE_MS)
        for w in windows
        for _ in range(rng.randint(3, 7))
    )
    trades = [
        trade(pair, at, i, round(rng.uniform(10, 20), 4), round(rng.uniform(0.001, 3), 6))
        for i, at in enumerate(times, start=100)
    ]
    for i in range(0, len(trades) - 1, 3):  # out of order, but within the same window
        a, b = trades[i], trades[i + 1]
        if a["timestamp_ms"] // CANDLE_MS == b["timestamp_ms"] // CANDLE_MS:
            trades[i], trades[i + 1] = b, a
    late = trade(pair, T0 + windows[0] * CANDLE_MS + 1, 99, 1.0, 1.0)  # its window is closed
    return [*trades, late], [late]


def interleave(*sequences: list[dict]) -> list[dict]:
    """Round-robin over the pairs' arrival sequences (each keeps its own order)."""
    merged, iterators = [], [iter(s) for s in sequences]
    while iterators:
        for it in list(iterators):
            item = next(it, None)
            if item is None:
                iterators.remove(it)
            else:
                merged.append(item)
    return merged


def produce(broker: str, topic: str, trades: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    for record in trades:
        producer.produce(
            topic,
            key=record["pair"],
            value=orjson.dumps(record),
            timestamp=record["timestamp_ms"],
        )
    assert producer.flush(30) == 0


def by_window(records: list[Record]) -> dict[tuple[str, int], Record]:
    keyed = {(r.value["pair"], r.value["window_start_ms"]): r for r in records}
    assert len(keyed) == len(records), "a window was emitted twice"
    return keyed


@pytest.mark.e2e
def test_candles_from_a_known_trade_sequence(broker: str, tmp_path: Path) -> None:
    rng = random.Random(5)
    btc, btc_late = btc_arrivals()
    eth, eth_late = random_arrivals("ETH/USD", [0, 1, 2, 3], rng)
    sol, sol_late = random_arrivals("SOL/USD", [1, 4], rng)  # windows 2 and 3 empty
    # a trade far in the future per pair closes every window before it (its own stays open)
    closers = [
        trade(p, T0 + 100 * CANDLE_MS, 10_000, 1.0, 1.0) for p in ("BTC/USD", "ETH/USD", "SOL/USD")
    ]
    late = btc_late + eth_late + sol_late
    arrivals = [*interleave(btc, eth, sol), *closers]
    on_time = [t for t in arrivals if t not in late and t not in closers]
    expected = reference_candles(on_time, CANDLE_MS)

    topic = unique("trades-in")
    create_topic(broker, topic, partitions=3)
    produce(broker, topic, arrivals)
    env = {"input": topic, "candle_seconds": "10", "grace_seconds": "3"}
    with candles_pipeline(broker, tmp_path, **env) as pipeline:
        pipeline.wait_for_log(STARTED)  # the output topic exists: a consumer can subscribe
        records = consume(
            broker, pipeline.env["output"], until=lambda r: len(r) >= len(expected), timeout=45
        )
        pipeline.wait_for_log(rf"late_trades_dropped={len(late)} ")
        assert pipeline.stop(signal.SIGTERM) == 0
    log = pipeline.log

    got = by_window(records)
    assert set(got) == set(expected), log[-3000:]
    assert_valid([r.value for r in records], "candle.v1")
    complete = reference_complete(expected)
    for window, record in got.items():
        assert_candle_equal(record.value, expected[window])
        assert record.key == record.value["pair"]
        assert record.timestamp_ms == record.value["window_start_ms"]
        assert record.value["complete"] is complete[window], window
    # BTC/USD's late trade 9 leaves a hole in window 1; window 3 continues window 1
    btc_complete = [got[("BTC/USD", T0 + w * CANDLE_MS)].value["complete"] for w in (0, 1, 3)]
    assert btc_complete == [False, False, True]
    # what the sequence was built for: empty windows, and BTC/USD windows whose first and
    # last trades to arrive are not their open and close
    assert ("BTC/USD", T0 + 2 * CANDLE_MS) not in got
    assert ("SOL/USD", T0 + 2 * CANDLE_MS) not in got and ("SOL/USD", T0 + 3 * CANDLE_MS) not in got
    for start in (T0, T0 + CANDLE_MS):
        arrived = [
            t for t in btc if start <= t["timestamp_ms"] < start + CANDLE_MS and t not in late
        ]
        candle = got[("BTC/USD", start)].value
        assert candle["open"] != arrived[0]["price"] and candle["close"] != arrived[-1]["price"]
    # the late trades: counted in one summary line, not one warning per trade
    total = f"total={len(expected)} late_trades_dropped={len(late)} "
    assert re.search(rf"Stopped\. candles: .*{total}", log)
    assert "Skipping window processing for the closed window" not in log
    assert "not a trade" not in log


@pytest.mark.e2e
def test_invalid_configuration_exits_2_naming_the_variable(broker: str, tmp_path: Path) -> None:
    with candles_pipeline(broker, tmp_path, candle_seconds="0") as pipeline:
        code = pipeline.wait(timeout=30)
    assert code == 2
    accepted = next(v for v in CANDLES if v.name == "candle_seconds").accepted  # 0.001 s and up
    assert f"Configuration error: candle_seconds: expected {accepted}; got '0'" in pipeline.log


# ---------------------------------------------------------------------------------------
# The whole chain: Kraken simulator -> trades pipeline -> candles pipeline

CHAIN_PAIRS = ("BTC/USD", "ETH/USD")


def candles_per_pair(count: int):
    """Stop reading once every pair has `count` candles."""

    def done(records: list[Record]) -> bool:
        pairs = [r.value["pair"] for r in records]
        return all(pairs.count(pair) >= count for pair in CHAIN_PAIRS)

    return done


def trades_past(ends_ms: dict[str, int]):
    """Stop reading once every pair has a trade at or after its given time."""

    def done(records: list[Record]) -> bool:
        reached = {
            r.value["pair"]
            for r in records
            if r.value["timestamp_ms"] >= ends_ms.get(r.value["pair"], 0)
        }
        return reached >= set(ends_ms)

    return done


@pytest.mark.e2e
def test_simulator_to_trades_to_candles(broker: str, tmp_path: Path) -> None:
    """The chain, candles started first: it waits for the trades topic and never creates it,
    so the trades pipeline creates it with its own (quix.yaml's) retention. Every topic both
    apps create (Quix Streams' changelogs included) asks for the broker's replication factor."""
    candle_ms, grace_ms = 1_000, 500
    market = Market(list(CHAIN_PAIRS), seed=1)
    requests = tmp_path / "create-topics.jsonl"
    recording = recording_env(requests)
    trades_topic = unique("trades")
    env = {"input": trades_topic, "candle_seconds": "1", "grace_seconds": "0.5", **recording}
    with (
        KrakenSimulator(market, rate=50.0, batch=3) as sim,
        candles_pipeline(broker, tmp_path / "candles", **env) as candles,
    ):
        candles.wait_for_log(rf"Waiting for topic {trades_topic}: this app reads it but never")
        assert trades_topic not in topics_on_broker(broker, [trades_topic])
        with trades_pipeline(
            broker, sim, tmp_path / "trades", output=trades_topic, **recording
        ) as trades:
            trades.wait_for_log(r"Subscribed to ETH/USD")
            candles.wait_for_log(STARTED)
            records = consume(broker, candles.env["output"], until=candles_per_pair(4))
            assert candles.stop(signal.SIGINT) == 0
            got = by_window(records)
            # every candle closed: its pair traded at or after its end + grace
            last_start = {p: max(s for q, s in got if q == p) for p in CHAIN_PAIRS}
            closing = {p: last_start[p] + candle_ms + grace_ms for p in CHAIN_PAIRS}
            trade_records = consume(broker, trades_topic, until=trades_past(closing))
            assert trades.stop() == 0

    # the trades topic has the trades pipeline's settings, which are quix.yaml's
    declared = declared_topics()["trades"]
    on_broker = topics_on_broker(broker, [trades_topic])[trades_topic]
    assert on_broker.configs["retention.ms"] == declared.extra_config["retention.ms"] == "-1"
    assert len(on_broker.replicas) == declared.num_partitions
    # what each app asked the broker to create: never the other's topic, never a replication
    # factor of its own (-1: the broker's default)
    asked = recorded_creations(requests)
    by_app = {
        "candles": {r["topic"] for r in asked if r["pid"] == candles.process.pid},
        "trades": {r["topic"] for r in asked if r["pid"] != candles.process.pid},
    }
    assert trades_topic not in by_app["candles"]
    assert by_app["candles"] >= {candles.env["output"]}
    assert len([t for t in by_app["candles"] if t.startswith("changelog__")]) == 2  # window, state
    trades_group = trades.env["Quix__Consumer_Group"]
    assert by_app["trades"] >= {
        trades_topic,
        trades.env["gaps_output"],
        f"source__kraken-{trades_topic}",
    }
    changelogs = {t for t in by_app["trades"] if t.startswith(f"changelog__{trades_group}--")}
    assert len(changelogs) == 2  # the dedupe step's, and the source's (made in its process)
    assert {r["replication_factor"] for r in asked} == {-1}, asked

    trades_seen = [r.value for r in trade_records]
    expected = {
        window: candle
        for window, candle in reference_candles(trades_seen, candle_ms).items()
        if window[1] <= last_start[window[0]]  # candles are read in order per pair
    }
    assert set(got) == set(expected), candles.log[-3000:]
    assert_valid(trades_seen, "trade.v1")
    assert_valid([r.value for r in records], "candle.v1")
    for window, record in got.items():
        assert_candle_equal(record.value, expected[window])
        assert record.key == window[0] and record.timestamp_ms == window[1]
    # the trades topic has no gap: every candle is complete but each pair's first
    firsts = {(p, min(s for q, s in got if q == p)) for p in CHAIN_PAIRS}
    assert {w: r.value["complete"] for w, r in got.items()} == {w: w not in firsts for w in got}
    assert re.search(r"Stopped\. candles: .* late_trades_dropped=0 invalid=0", candles.log)
