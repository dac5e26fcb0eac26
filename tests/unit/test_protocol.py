"""The sans-I/O Kraken v2 protocol layer, driven with plain frames."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sources.kraken.protocol import (
    Heartbeat,
    Malformed,
    Pong,
    ServerError,
    Status,
    SubscribeAck,
    SubscribeError,
    TradeBatch,
    parse_frame,
    ping_request,
    subscribe_request,
)
from sources.kraken.trade import InvalidTrade, Trade

TRADE = {
    "symbol": "MATIC/USD",
    "side": "sell",
    "price": 0.5117,
    "qty": 40.0,
    "ord_type": "market",
    "trade_id": 4665906,
    "timestamp": "2023-09-25T07:49:37.708706Z",
}


def frame(obj: object) -> bytes:
    return orjson.dumps(obj)


def trade(**changes: object) -> dict:
    return {**TRADE, **changes}


def test_status_message_gives_connection_id() -> None:
    [event] = parse_frame(
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        '"connection_id":12393906104898154338,"system":"online","version":"2.0.4"}]}'
    )
    assert event == Status("online", 12393906104898154338, "v2", "2.0.4")


def test_heartbeat_and_pong() -> None:
    assert parse_frame('{"channel":"heartbeat"}') == [Heartbeat()]
    pong = parse_frame(
        '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z",'
        '"time_out":"2023-09-24T14:10:23.799703Z"}'
    )
    assert pong == [Pong(101)]


def test_subscribe_ack_success_and_failure() -> None:
    ok = parse_frame(
        '{"method":"subscribe","req_id":1234,"result":{"channel":"trade","snapshot":true,'
        '"symbol":"MATIC/USD"},"success":true,"time_in":"x","time_out":"y"}'
    )
    assert ok == [SubscribeAck("subscribe", "trade", "MATIC/USD", 1234)]
    failed = parse_frame(
        '{"error":"Currency pair not supported FOO/BAR","method":"subscribe","req_id":1234,'
        '"success":false,"symbol":"FOO/BAR","time_in":"x","time_out":"y"}'
    )
    assert failed == [
        SubscribeError("subscribe", "FOO/BAR", "Currency pair not supported FOO/BAR", 1234)
    ]


def test_rate_limit_error_is_a_server_error() -> None:
    assert parse_frame('{"Error":"Exceeded msg rate"}') == [ServerError("Exceeded msg rate")]


@pytest.mark.parametrize("kind", ["snapshot", "update"])
def test_trade_messages_of_both_kinds_give_trades(kind: str) -> None:
    [batch] = parse_frame(frame({"channel": "trade", "type": kind, "data": [TRADE]}))
    assert isinstance(batch, TradeBatch) and batch.kind == kind
    [only] = batch.trades
    assert only.to_kraken() == TRADE
    assert only.timestamp_ms == 1695628177708


def test_message_with_several_pairs_keeps_every_trade_in_order() -> None:
    data = [
        trade(symbol="BTC/USD", trade_id=10),
        trade(symbol="ETH/USD", trade_id=7),
        trade(symbol="BTC/USD", trade_id=11),
    ]
    [batch] = parse_frame(frame({"channel": "trade", "type": "update", "data": data}))
    assert [(t.symbol, t.trade_id) for t in batch.trades] == [
        ("BTC/USD", 10),
        ("ETH/USD", 7),
        ("BTC/USD", 11),
    ]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({k: v for k, v in TRADE.items() if k != "price"}, "missing field 'price'"),
        (trade(price="0.5"), "price must be a number"),
        (trade(trade_id="12"), "trade_id must be a non-negative integer"),
        (trade(trade_id=True), "trade_id must be a non-negative integer"),
        (trade(side="up"), "side must be one of"),
        (trade(ord_type=None), "ord_type must be one of"),
        (trade(timestamp="yesterday"), "is not RFC 3339"),
        (trade(symbol=5), "symbol must be"),
        ([1, 2], "trade must be an object"),
    ],
)
def test_invalid_trade_is_reported_and_neighbours_survive(broken: object, reason: str) -> None:
    data = [trade(trade_id=1), broken, trade(trade_id=3)]
    events = parse_frame(frame({"channel": "trade", "type": "update", "data": data}))
    batches = [e for e in events if isinstance(e, TradeBatch)]
    malformed = [e for e in events if isinstance(e, Malformed)]
    assert [t.trade_id for t in batches[0].trades] == [1, 3]
    assert len(malformed) == 1 and reason in malformed[0].reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xffnot json", "not JSON"),
        ("[1,2,3]", "not a JSON object"),
        ('{"channel":"book","type":"update","data":[]}', "unknown channel 'book'"),
        ('{"channel":"trade","type":"delta","data":[]}', "trade message needs"),
        ('{"channel":"trade","type":"update","data":{}}', "trade message needs"),
        ('{"channel":"status","data":"online"}', "status message without data"),
        ('{"hello":"world"}', "unknown message"),
    ],
)
def test_malformed_frames(raw: str | bytes, reason: str) -> None:
    [event] = parse_frame(raw)
    assert isinstance(event, Malformed) and reason in event.reason


def test_malformed_excerpt_is_truncated_with_a_note_of_the_length() -> None:
    [event] = parse_frame("x" * 5000)
    assert isinstance(event, Malformed) and event.excerpt == "x" * 200 + "… (5000 chars)"
    [event] = parse_frame(b"x" * 5000)
    assert isinstance(event, Malformed) and event.excerpt == "x" * 200 + "… (5000 bytes)"


def test_requests() -> None:
    request = orjson.loads(subscribe_request(["BTC/USD", "ETH/USD"], snapshot=True, req_id=7))
    assert request == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"], "snapshot": True},
        "req_id": 7,
    }
    assert orjson.loads(ping_request(3)) == {"method": "ping", "req_id": 3}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes | str) -> None:
    events = parse_frame(raw)
    assert events and all(not isinstance(e, Exception) for e in events)


@given(st.dictionaries(st.sampled_from([*TRADE, "channel", "type", "data", "method"]), json_values))
def test_parse_never_raises_on_arbitrary_messages(message: dict) -> None:
    assert parse_frame(frame(message))


valid_trades = st.builds(
    lambda symbol, trade_id, price, qty, side, ord_type: trade(
        symbol=symbol, trade_id=trade_id, price=price, qty=qty, side=side, ord_type=ord_type
    ),
    st.sampled_from(["BTC/USD", "ETH/USD", "SOL/EUR"]),
    st.integers(0, 2**53),
    st.floats(min_value=1e-9, max_value=1e9),
    st.floats(min_value=1e-9, max_value=1e9),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["market", "limit"]),
)


@given(st.lists(valid_trades | json_values, max_size=12))
def test_every_valid_trade_survives_any_garbage_around_it(data: list) -> None:
    events = parse_frame(frame({"channel": "trade", "type": "update", "data": data}))
    parsed = [t for e in events if isinstance(e, TradeBatch) for t in e.trades]
    expected = []
    for item in data:
        with contextlib.suppress(ValueError):
            expected.append(Trade.from_kraken(item))
    assert parsed == expected
    malformed = sum(isinstance(e, Malformed) for e in events)
    assert malformed == len(data) - len(expected)


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["buy", "sell", "market", "limit", "BTC/USD", "2023-09-25T07:49:37Z"]),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
)


@given(valid_trades, st.sampled_from(sorted(TRADE)), odd_values, st.booleans())
def test_fast_and_checked_validation_agree(
    item: dict, field: str, value: object, drop: bool
) -> None:
    """`from_kraken`'s one-pass path accepts exactly what the field-by-field path accepts."""
    changed = {k: v for k, v in item.items() if k != field} if drop else {**item, field: value}
    outcomes = []
    for parse in (Trade.from_kraken, Trade._checked):
        try:
            outcomes.append(parse(changed))
        except InvalidTrade:
            outcomes.append(InvalidTrade)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    ("oddity", "rejected"),
    [
        (b'"price":NaN', 1),  # not JSON for orjson
        (b'"price":1e999', 1),  # beyond a double: inf
        (b'"price":-Infinity', 1),
        (b'"side":"b\xffy"', 1),  # invalid UTF-8 inside a field of one trade
        (b'"misc":NaN', 0),  # an oddity in a field nobody reads costs nothing
    ],
)
def test_a_strict_json_oddity_costs_only_the_trade_that_carries_it(
    oddity: bytes, rejected: int
) -> None:
    """Failure 7: a NaN, 1e999 or invalid UTF-8 anywhere used to lose the whole frame."""
    good = [orjson.dumps(trade(trade_id=i)) for i in (1, 3)]
    field = oddity.split(b'"')[1].decode()
    fields = {k: v for k, v in trade(trade_id=2).items() if k != field}
    odd = orjson.dumps(fields)[:-1] + b"," + oddity + b"}"
    raw = b'{"channel":"trade","type":"update","data":[' + b",".join([good[0], odd, good[1]])
    events = parse_frame(raw + b"]}")
    [batch] = [e for e in events if isinstance(e, TradeBatch)]
    expected = [1, 3] if rejected else [1, 2, 3]
    assert [t.trade_id for t in batch.trades] == expected
    assert len([e for e in events if isinstance(e, Malformed)]) == rejected
