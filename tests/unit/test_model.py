"""Trade model, normalization, backoff and settings: pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sources.app.settings import ConfigError, TradesSettings, parse_pairs
from sources.kraken.backoff import Backoff
from sources.kraken.trade import Trade, parse_timestamp_ms
from sources.steps.normalize import normalize_trade, normalize_trades

KRAKEN_TRADE = {
    "symbol": "BTC/USD",
    "side": "buy",
    "price": 65000.1,
    "qty": 0.01,
    "ord_type": "market",
    "trade_id": 4665906,
    "timestamp": "2023-09-25T07:49:37.708706Z",
}


def make_trade(trade_id: int, symbol: str = "BTC/USD", ms: int | None = None) -> Trade:
    ms = 1_700_000_000_000 + trade_id if ms is None else ms
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return Trade.from_kraken(
        {**KRAKEN_TRADE, "symbol": symbol, "trade_id": trade_id, "timestamp": stamp}
    )


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
def test_timestamp_ms_matches_an_independent_computation(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expected = (
        int(
            (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
            * 1_000_000
        )
        // 1000
    )
    assert parse_timestamp_ms(text) == expected


def test_timestamp_without_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        parse_timestamp_ms("2023-09-25T07:49:37.708706")


def test_normalize_renames_fields_and_adds_event_time() -> None:
    record = normalize_trade(KRAKEN_TRADE)
    assert record == {
        "pair": KRAKEN_TRADE["symbol"],
        "price": KRAKEN_TRADE["price"],
        "volume": KRAKEN_TRADE["qty"],
        "side": KRAKEN_TRADE["side"],
        "order_type": KRAKEN_TRADE["ord_type"],
        "trade_id": KRAKEN_TRADE["trade_id"],
        "timestamp_ms": parse_timestamp_ms(KRAKEN_TRADE["timestamp"]),
        "timestamp": KRAKEN_TRADE["timestamp"],
        "origin": "ws",  # a plain Kraken object is a WebSocket trade
    }


def test_normalize_trades_gives_one_record_per_trade_in_order() -> None:
    batch = [make_trade(i).to_kraken() for i in (5, 6, 7)]
    assert [r["trade_id"] for r in normalize_trades(batch)] == [5, 6, 7]


def test_source_message_carries_the_time_the_dataframe_would_parse() -> None:
    trade = make_trade(42, "ETH/USD")
    assert trade.to_message() == {**trade.to_kraken(), "timestamp_ms": trade.timestamp_ms}
    assert normalize_trade(trade.to_message()) == normalize_trade(trade.to_kraken())
    message = trade.to_message("rest")  # only REST trades say so: live ones stay lean
    assert message == {**trade.to_kraken(), "timestamp_ms": trade.timestamp_ms, "origin": "rest"}
    assert normalize_trade(message) == {**normalize_trade(trade.to_kraken()), "origin": "rest"}


def test_round_trip_through_kraken_format() -> None:
    trade = make_trade(42, "ETH/USD")
    assert Trade.from_kraken(trade.to_kraken()) == trade


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=60.0, rng=random.Random(1))
    ceilings, delays = [], []
    for _ in range(10):
        ceilings.append(backoff.ceiling())
        delays.append(backoff.next_delay())
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.ceiling() == 1


def test_settings_defaults() -> None:
    settings = TradesSettings.from_env({})
    assert settings.pairs == ("BTC/USD", "ETH/USD")
    assert settings.broker_address == "localhost:19092"
    assert settings.output == "trades"
    assert settings.snapshot is True
    assert settings.heartbeat_timeout == 10.0


def test_settings_names_are_case_insensitive() -> None:
    settings = TradesSettings.from_env(
        {
            "PAIRS": "sol/usd, BTC/USD",
            "Output": "t1",
            "SNAPSHOT": "false",
            "Quix__Broker__Address": "redpanda:9092",
            "HEARTBEAT_TIMEOUT": "5",
        }
    )
    assert settings.pairs == ("SOL/USD", "BTC/USD")
    assert (settings.output, settings.snapshot, settings.heartbeat_timeout) == ("t1", False, 5.0)
    assert settings.broker_address == "redpanda:9092"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"pairs": "BTC/USD,BTCUSD"}, "pairs: 'BTCUSD' is not a Kraken v2 symbol"),
        ({"pairs": " , "}, "pairs: no pair given"),
        ({"snapshot": "maybe"}, "snapshot: expected true or false .*; got 'maybe'"),
        ({"heartbeat_timeout": "soon"}, "heartbeat_timeout: expected seconds from 1 to 3600; got"),
        ({"heartbeat_timeout": "0"}, "heartbeat_timeout: expected seconds from 1 to 3600; got '0'"),
        ({"kraken_ws_url": "http://x"}, "kraken_ws_url: expected a ws:// or wss:// URL"),
        ({"output": "bad topic"}, r"output: expected letters, .* topic name\); got 'bad topic'"),
    ],
)
def test_invalid_settings_fail_with_the_name(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TradesSettings.from_env(env)


def test_parse_pairs_deduplicates() -> None:
    assert parse_pairs("BTC/USD,btc/usd,ETH/USD") == ("BTC/USD", "ETH/USD")
