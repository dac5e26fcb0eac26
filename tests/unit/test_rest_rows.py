"""Rows and pages of Kraken's REST `Trades`: pure parsing, no socket."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.market import Market
from sources.kraken.rows import (
    BadRow,
    TradesPage,
    parse_trade_row,
    parse_trades_result,
    rest_row_to_trade,
    v2_symbol,
)
from sources.kraken.trade import InvalidTrade, Trade

ROW = ["65000.10000", "0.01000000", 1695628177.708706, "s", "m", "", 4665906]
WS = {
    "symbol": "BTC/USD",
    "side": "sell",
    "price": 65000.1,
    "qty": 0.01,
    "ord_type": "market",
    "trade_id": 4665906,
    "timestamp": "2023-09-25T07:49:37.708706Z",
}


def with_field(index: int, value: Any) -> list[Any]:
    row = list(ROW)
    row[index] = value
    return row


def test_a_row_gives_the_same_trade_as_the_websocket() -> None:
    assert parse_trade_row("BTC/USD", ROW) == Trade.from_kraken(WS)
    assert rest_row_to_trade("BTC/USD", ROW) == Trade.from_kraken(WS)
    buy_limit = with_field(3, "b")
    buy_limit[4] = "l"
    assert parse_trade_row("BTC/USD", buy_limit) == Trade.from_kraken(
        {**WS, "side": "buy", "ord_type": "limit"}
    )


def test_simulated_rows_match_their_websocket_form() -> None:
    market = Market(["BTC/USD", "DOGE/USD"], seed=5)
    market.seed_history(count_per_pair=300, span_seconds=600)
    for symbol in market.pairs:
        for sim_trade in market.history(symbol):
            parsed = parse_trade_row(symbol, sim_trade.to_rest_row())
            assert parsed == Trade.from_kraken(sim_trade.to_ws())


def test_zero_padded_decimals_and_100ns_times() -> None:
    # As recorded from Kraken: zero-padded strings, 7 decimals of time (100 ns).
    row = ["105433.60000", "0.00012340", 1762795433.9717445, "b", "l", "", 86123456]
    trade = parse_trade_row("BTC/USD", row)
    assert isinstance(trade, Trade)
    assert (trade.price, trade.qty) == (105433.6, 0.0001234)
    assert trade.timestamp == "2025-11-10T17:23:53.971744Z"  # whole microseconds, cut
    assert trade.timestamp_ms == 1762795433971
    exact = parse_trade_row("BTC/USD", with_field(2, 1695628177.708706))
    assert isinstance(exact, Trade) and exact.timestamp.endswith(".708706Z")
    whole = parse_trade_row("BTC/USD", with_field(2, 1695628177))
    assert isinstance(whole, Trade) and whole.timestamp == "2023-09-25T07:49:37.000000Z"


@pytest.mark.parametrize(
    ("row", "trade_id", "reason"),
    [
        (ROW[:6], None, "6 fields"),  # no trade_id at all
        ([*ROW[:5], 4665906], 4665906, "6 fields"),  # misc missing: the id is still last
        (with_field(0, "abc"), 4665906, "price"),
        (with_field(0, "NaN"), 4665906, "price"),
        (with_field(0, "nan"), 4665906, "price"),
        (with_field(0, "inf"), 4665906, "price"),
        (with_field(0, "-1.5"), 4665906, "price"),
        (with_field(0, "0.00000"), 4665906, "price"),
        (with_field(0, "1e5"), 4665906, "price"),
        (with_field(0, "1_000"), 4665906, "price"),
        (with_field(0, ""), 4665906, "price"),
        (with_field(0, None), 4665906, "price"),
        (with_field(0, float("nan")), 4665906, "price"),
        (with_field(0, float("inf")), 4665906, "price"),
        (with_field(1, "Infinity"), 4665906, "volume"),
        (with_field(1, "0"), 4665906, "volume"),
        (with_field(1, True), 4665906, "volume"),
        (with_field(2, "yesterday"), 4665906, "time"),
        (with_field(2, -5.0), 4665906, "time"),
        (with_field(2, 1e300), 4665906, ""),  # beyond any date
        (with_field(3, "x"), 4665906, "side"),
        (with_field(3, ["b"]), 4665906, "side"),
        (with_field(4, "z"), 4665906, "ord_type"),
        (with_field(6, "4665906"), None, "trade_id"),
        (with_field(6, 4665906.0), None, "trade_id"),
        (with_field(6, -1), None, "trade_id"),
        (with_field(6, True), None, "trade_id"),
        ({"price": "1"}, None, "array"),
        ("65000.1,0.01", None, "array"),
        (None, None, "array"),
        ([], None, "0 fields"),
    ],
)
def test_bad_rows_are_reported_never_raised(row: Any, trade_id: int | None, reason: str) -> None:
    bad = parse_trade_row("BTC/USD", row)
    assert isinstance(bad, BadRow), bad
    assert bad.trade_id == trade_id
    assert reason in bad.reason
    assert bad.excerpt and len(bad.excerpt) <= 200
    with pytest.raises(InvalidTrade):
        rest_row_to_trade("BTC/USD", row)


def test_long_rows_are_excerpted() -> None:
    assert isinstance(parse_trade_row("BTC/USD", with_field(5, "x" * 5000)), Trade)  # misc unread
    row = ["x" * 5000, *ROW[1:]]
    bad = parse_trade_row("BTC/USD", row)
    note = f"… ({len(orjson.dumps(row))} chars)"  # the row's length as JSON
    assert isinstance(bad, BadRow) and bad.excerpt == orjson.dumps(row).decode()[:200] + note
    assert len(bad.reason) < 300  # the value it quotes is cut too


def test_extra_fields_are_tolerated() -> None:
    assert parse_trade_row("BTC/USD", [*ROW, "something new"]) == Trade.from_kraken(WS)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["b", "s", "m", "l", "1.5", "NaN", "-0", "0.0"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.lists(JSON, max_size=9) | JSON)
def test_no_row_ever_raises(row: Any) -> None:
    parsed = parse_trade_row("BTC/USD", row)
    assert isinstance(parsed, Trade | BadRow)
    if isinstance(parsed, Trade):
        assert parsed.price > 0 and parsed.qty > 0
        assert parsed.price < float("inf") and parsed.qty < float("inf")


@settings(deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2, 6]), min_size=1, max_size=7), st.integers(0, 19))
def test_one_field_spoilt_anywhere_costs_that_row_only(fields: list[int], where: int) -> None:
    rows = [with_field(6, 100 + i) for i in range(20)]
    for field in fields:
        rows[where][field] = "garbage"
    page = parse_trades_result("BTC/USD", "XXBTZUSD", {"XXBTZUSD": rows, "last": "77"})
    assert [t.trade_id for t in page.trades] == [100 + i for i in range(20) if i != where]
    assert len(page.bad_rows) == 1 and page.last_ns == 77
    assert page.bad_rows[0].trade_id == (None if 6 in fields else 100 + where)


def test_a_page_keeps_every_row_in_order_bad_ones_in_place_and_the_cursor() -> None:
    rows = [with_field(6, 10), with_field(6, 11), with_field(0, "oops"), with_field(6, 13)]
    rows[2][6] = 12
    page = parse_trades_result(
        "BTC/USD", "XXBTZUSD", {"XXBTZUSD": rows, "last": "1695628177708706000"}
    )
    assert isinstance(page, TradesPage)
    assert [t.trade_id for t in page.trades] == [10, 11, 13]
    assert page.last_ns == 1695628177708706000
    assert [(b.trade_id, "price" in b.reason) for b in page.bad_rows] == [(12, True)]
    # what Kraken served, broken rows in their place: a full page is full however many parse
    assert [row.trade_id for row in page.rows] == [10, 11, 12, 13]
    # the key may be Kraken's other name for the pair; `last` may be a number
    other = parse_trades_result("BTC/USD", "XXBTZUSD", {"XBTUSD": rows[:1], "last": 5})
    assert [t.trade_id for t in other.trades] == [10] and other.last_ns == 5
    empty = parse_trades_result("BTC/USD", "XXBTZUSD", {"XXBTZUSD": [], "last": "9"})
    assert empty == TradesPage((), 9)


@pytest.mark.parametrize(
    "result",
    [
        [],
        "nope",
        {"last": "5"},  # no rows
        {"XXBTZUSD": "rows", "last": "5"},
        {"XXBTZUSD": []},  # no cursor
        {"XXBTZUSD": [], "last": "soon"},
        {"XXBTZUSD": [], "last": -1},
        {"XXBTZUSD": [], "last": True},
        {"XXBTZUSD": [], "last": 1.5},
    ],
)
def test_a_malformed_page_raises_value_error(result: Any) -> None:
    with pytest.raises(ValueError):
        parse_trades_result("BTC/USD", "XXBTZUSD", result)


def test_v2_symbols_from_rest_wsnames() -> None:
    assert v2_symbol("XBT/USD") == "BTC/USD"
    assert v2_symbol("XDG/USD") == "DOGE/USD"
    assert v2_symbol("ETH/XBT") == "ETH/BTC"
    assert v2_symbol("ETH/EUR") == "ETH/EUR"
