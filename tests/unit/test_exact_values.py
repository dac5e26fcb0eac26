"""Price and volume in the output equal Kraken's decimal exactly: when, and how beyond that.

A double holds every decimal of up to 15 significant digits in the sense that matters: the
shortest repr of the nearest double (what orjson and the output serializer write) is that
decimal again. Kraken's precisions (prices with up to ~10 decimals, volumes with 8) stay
within 15 digits for every price and every volume below 10,000,000; a volume of 8 decimals
from 10,000,000 up has 16 or more, and then about one in eight is not exact
(79099442.28268421 comes back as 79099442.2826842). `decimal_strings` writes Kraken's text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from quixstreams.utils.json import dumps as output_dumps  # the output topic's serializer

from sources.kraken.protocol import TradeBatch, parse_frame
from sources.kraken.rows import parse_trade_row
from sources.kraken.trade import ExactFloat, Trade, decimal_text
from sources.steps.normalize import normalize_trade
from tests.support.schemas import assert_valid

STAMP = "2023-09-25T07:49:37.708706Z"
REST_SECONDS = 1695628177.708706


def decimals(max_significant: int, max_decimals: int, below: int) -> st.SearchStrategy[Decimal]:
    """Positive decimals of at most `max_significant` digits and `max_decimals` decimals,
    smaller than `below`, written with any number of trailing zeros up to `max_decimals`."""

    def build(units: int, scale: int) -> Decimal:
        return Decimal(units).scaleb(-scale)

    return st.builds(
        build, st.integers(1, 10**max_significant - 1), st.integers(0, max_decimals)
    ).filter(lambda d: d < below)


# Kraken's precisions: prices up to 10 decimals (BTC/USD has 1, small coins up to 10),
# volumes 8 decimals; magnitudes Kraken trades, kept within 15 significant digits.
PRICES = decimals(15, 10, below=10**7)
VOLUMES = decimals(15, 8, below=10**7)
# anything the wire may carry, far beyond a double's 15 digits
WIDE = decimals(22, 12, below=10**12)


def ws_frame(price: str, qty: str) -> str:
    """A Kraken v2 trade frame with these number texts, verbatim."""
    return (
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
        f'"price":{price},"qty":{qty},"ord_type":"limit","trade_id":4665906,'
        f'"timestamp":"{STAMP}"}}]}}'
    )


def parsed_trade(frame: str, *, exact: bool = False) -> Trade:
    [batch] = parse_frame(frame, exact=exact)
    assert isinstance(batch, TradeBatch)
    [trade] = batch.trades
    return trade


def rest_row(price: str, volume: str) -> list[Any]:
    return [price, volume, REST_SECONDS, "b", "l", "", 4665906]


def output_numbers(trade: Trade, origin: str) -> tuple[Decimal, Decimal]:
    """Price and volume as the output topic's bytes say them, read as decimals."""
    record = normalize_trade(trade.to_message(origin))
    assert_valid([record], "trade.v1")
    value = json.loads(output_dumps(record), parse_float=Decimal, parse_int=Decimal)
    return value["price"], value["volume"]


@given(PRICES, VOLUMES)
@example(Decimal("105433.6"), Decimal("0.00012345"))
@example(Decimal("0.0000012345"), Decimal("9999999.99999999"))  # 15 digits, 8 decimals
def test_ws_numbers_of_kraken_s_precisions_come_out_exact(price: Decimal, qty: Decimal) -> None:
    trade = parsed_trade(ws_frame(str(price), str(qty)))
    assert Decimal(repr(trade.price)) == price and Decimal(repr(trade.qty)) == qty
    assert output_numbers(trade, "ws") == (price, qty)


@given(PRICES, VOLUMES, st.integers(0, 10), st.integers(8, 10))
@example(Decimal("105433.6"), Decimal("0.01"), 5, 8)  # "105433.60000", "0.01000000"
def test_rest_strings_of_kraken_s_precisions_come_out_exact(
    price: Decimal, volume: Decimal, price_decimals: int, volume_decimals: int
) -> None:
    """REST pads to the pair's decimals (`"105433.60000"`); the value is the same decimal."""
    price_text = f"{price:.{max(price_decimals, -price.as_tuple().exponent)}f}"
    volume_text = f"{volume:.{max(volume_decimals, -volume.as_tuple().exponent)}f}"
    trade = parse_trade_row("BTC/USD", rest_row(price_text, volume_text))
    assert isinstance(trade, Trade)
    assert Decimal(repr(trade.price)) == price and Decimal(repr(trade.qty)) == volume
    assert output_numbers(trade, "rest") == (price, volume)


def test_beyond_15_significant_digits_a_float_is_not_exact() -> None:
    """The boundary: a volume of 8 decimals and 16 digits that a double cannot hold."""
    text = "79099442.28268421"
    trade = parsed_trade(ws_frame("65000.1", text))
    assert Decimal(repr(trade.qty)) != Decimal(text)
    # ... which decimal_strings writes as it came
    exact = parsed_trade(ws_frame("65000.1", text), exact=True)
    assert exact.to_message("ws", decimal_strings=True)["qty"] == text


def canonical(value: Decimal) -> str:
    """The plain form `decimal_strings` writes: no exponent, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@given(WIDE, WIDE)
@example(Decimal("79099442.28268421"), Decimal("743371942.07580133"))
@example(Decimal("65000"), Decimal("1.000000000000000000001"))
def test_decimal_strings_are_kraken_s_decimals_at_any_precision(
    price: Decimal, qty: Decimal
) -> None:
    ws = parsed_trade(ws_frame(str(price), str(qty)), exact=True)
    rest = parse_trade_row("BTC/USD", rest_row(format(price, "f"), format(qty, "f")))
    assert isinstance(rest, Trade)
    for trade, origin in ((ws, "ws"), (rest, "rest")):
        record = normalize_trade(trade.to_message(origin, decimal_strings=True))
        assert (record["price"], record["volume"]) == (canonical(price), canonical(qty))
        assert_valid([record], "trade.v1")
        # the float path of the same trade still writes numbers
        assert type(trade.to_message(origin)["price"]) is float


def test_exponents_and_integers_on_the_wire_are_exact_too() -> None:
    trade = parsed_trade(ws_frame("6.5E4", "1e-8"), exact=True)
    assert trade.to_message(decimal_strings=True)["price"] == "65000"
    assert trade.to_message(decimal_strings=True)["qty"] == "0.00000001"
    integer = parsed_trade(ws_frame("12345678901234567", "2"))  # an int beyond 2**53
    assert integer.to_message(decimal_strings=True)["price"] == "12345678901234567"
    assert integer.to_message()["qty"] == 2.0 and type(integer.to_message()["qty"]) is float


def test_exact_parsing_keeps_the_lenient_reading_and_bad_trades_alone() -> None:
    frame = (
        '{"channel":"trade","type":"update","data":['
        '{"symbol":"BTC/USD","side":"buy","price":NaN,"qty":1.5,"ord_type":"limit",'
        f'"trade_id":1,"timestamp":"{STAMP}"}},'
        '{"symbol":"BTC/USD","side":"buy","price":2.50,"qty":1.5,"ord_type":"limit",'
        f'"trade_id":2,"timestamp":"{STAMP}"}}]}}'
    )
    events = parse_frame(frame, exact=True)
    batch = next(e for e in events if isinstance(e, TradeBatch))
    assert [t.trade_id for t in batch.trades] == [2]
    assert batch.trades[0].to_message(decimal_strings=True)["price"] == "2.5"
    assert any("invalid trade" in getattr(e, "reason", "") for e in events)
    assert parse_frame(b"\xff not json", exact=True)[0].reason.startswith("not JSON")  # type: ignore[union-attr]


def test_decimal_text_of_plain_floats_is_their_shortest_repr() -> None:
    assert decimal_text(65000.0) == "65000"
    assert decimal_text(1e-05) == "0.00001"
    assert decimal_text(0.1) == "0.1"
    assert decimal_text(ExactFloat("0007.50")) == "7.5"
    assert ExactFloat("0.10") == 0.1 and ExactFloat("0.10").text == "0.10"
