"""The `Trade` model: one Kraken v2 trade, validated; and how a price keeps its decimal text.

Prices and volumes are floats. A float holds a decimal of up to 15 significant digits
exactly in the sense that matters here: its shortest repr (what `repr`, orjson and the JSON
serializers write) is that decimal again. Kraken's wire text can hold more (a volume of
12345678.12345678 has 16); `ExactFloat` is a float that also remembers the text it was read
from, so that `decimal_strings` can write Kraken's decimal exactly (`decimal_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ORIGINS",
    "ExactFloat",
    "InvalidTrade",
    "Trade",
    "decimal_text",
    "parse_timestamp_ms",
]

ORIGINS = ("ws", "rest")  # a trade Kraken's WebSocket sent; one fetched from its REST API

SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INF = float("inf")


class InvalidTrade(ValueError):
    """A trade object that lacks a field or has one of the wrong type or value."""


class ExactFloat(float):
    """A float read from a decimal text, which it keeps (`text`).

    Use it as the `parse_float` of `json.loads`, or for Kraken's REST strings: it compares,
    sorts and computes as the float, and `decimal_text` gives the text back.
    """

    __slots__ = ("text",)

    def __new__(cls, text: str) -> ExactFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExactFloat, (self.text,))


def decimal_text(value: float) -> str:
    """The plain decimal a price or volume stands for: Kraken's text for an `ExactFloat`,
    the shortest repr for any other float; no exponent, no trailing zeros
    (`"105433.60000"` -> `"105433.6"`, `1e-05` -> `"0.00001"`, `65000.0` -> `"65000"`)."""
    text = value.text if type(value) is ExactFloat else repr(float(value))
    if "e" in text or "E" in text or (text[:1] == "0" and text[1:2] not in (".", "")):
        text = format(Decimal(text), "f")  # no exponent; "007.5" -> "7.5"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_timestamp_ms(value: str) -> int:
    """Convert an RFC 3339 UTC timestamp (`2023-09-25T07:49:37.708706Z`) to epoch milliseconds.

    Integer arithmetic, so no float rounding moves a trade into the next millisecond.
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    delta = moment - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _number(obj: dict[str, Any], field: str) -> float:
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTrade(f"{field} must be a number, got {type(value).__name__}")
    if not 0 < value < _INF:
        raise InvalidTrade(f"{field} must be a positive, finite number, got {value!r}")
    if type(value) is int:  # exact whatever its size: its text is its digits
        return ExactFloat(str(value))
    return value if type(value) is ExactFloat else float(value)


def _choice(obj: dict[str, Any], field: str, allowed: frozenset[str]) -> str:
    value = obj[field]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidTrade(f"{field} must be one of {sorted(allowed)}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Trade:
    """One executed trade, with Kraken v2's field names.

    :param symbol: the pair in `BASE/QUOTE` form, e.g. `BTC/USD`.
    :param side: taker side, `buy` or `sell`.
    :param price: execution price.
    :param qty: traded quantity in the base currency.
    :param ord_type: `market` or `limit`.
    :param trade_id: sequence number, rising by one per trade within a symbol.
    :param timestamp: RFC 3339 UTC time of the trade, as Kraken sent it.
    :param timestamp_ms: the same instant in epoch milliseconds.
    """

    symbol: str
    side: str
    price: float
    qty: float
    ord_type: str
    trade_id: int
    timestamp: str
    timestamp_ms: int

    @classmethod
    def from_kraken(cls, obj: Any) -> Trade:
        """Validate one element of a trade message's `data` array.

        :raises InvalidTrade: naming the first missing or wrong field.
        """
        # The usual trade passes every check in one go (this runs for every trade); anything
        # else takes the field-by-field path, which names what is wrong.
        if type(obj) is dict:
            get = obj.get
            symbol, side, price, qty = get("symbol"), get("side"), get("price"), get("qty")
            ord_type, trade_id, timestamp = get("ord_type"), get("trade_id"), get("timestamp")
            if (
                type(symbol) is str
                and "/" in symbol
                and type(side) is str
                and side in SIDES
                and (type(price) is float or type(price) is ExactFloat)
                and 0 < price < _INF
                and (type(qty) is float or type(qty) is ExactFloat)
                and 0 < qty < _INF
                and type(ord_type) is str
                and ord_type in ORDER_TYPES
                and type(trade_id) is int
                and trade_id >= 0
                and type(timestamp) is str
            ):
                try:
                    ms = parse_timestamp_ms(timestamp)
                except ValueError:
                    pass  # the checked path says what is wrong with it
                else:  # positional: the generated __init__ is the costly part of a Trade
                    return cls(symbol, side, price, qty, ord_type, trade_id, timestamp, ms)
        return cls._checked(obj)

    @classmethod
    def _checked(cls, obj: Any) -> Trade:
        """`from_kraken` one field at a time, raising on the first wrong one."""
        if not isinstance(obj, dict):
            raise InvalidTrade(f"trade must be an object, got {type(obj).__name__}")
        try:
            symbol = obj["symbol"]
            if not isinstance(symbol, str) or "/" not in symbol:
                raise InvalidTrade(f"symbol must be a BASE/QUOTE string, got {symbol!r}")
            trade_id = obj["trade_id"]
            if isinstance(trade_id, bool) or not isinstance(trade_id, int) or trade_id < 0:
                raise InvalidTrade(f"trade_id must be a non-negative integer, got {trade_id!r}")
            timestamp = obj["timestamp"]
            if not isinstance(timestamp, str):
                raise InvalidTrade(f"timestamp must be a string, got {type(timestamp).__name__}")
            try:
                timestamp_ms = parse_timestamp_ms(timestamp)
            except ValueError as exc:
                raise InvalidTrade(f"timestamp {timestamp!r} is not RFC 3339: {exc}") from None
            return cls(
                symbol=symbol,
                side=_choice(obj, "side", SIDES),
                price=_number(obj, "price"),
                qty=_number(obj, "qty"),
                ord_type=_choice(obj, "ord_type", ORDER_TYPES),
                trade_id=trade_id,
                timestamp=timestamp,
                timestamp_ms=timestamp_ms,
            )
        except KeyError as exc:
            raise InvalidTrade(f"missing field {exc.args[0]!r}") from None

    def to_kraken(self) -> dict[str, Any]:
        """The trade as Kraken v2 sends it."""
        return {
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "ord_type": self.ord_type,
            "trade_id": self.trade_id,
            "timestamp": self.timestamp,
        }

    def to_message(self, origin: str = "ws", decimal_strings: bool = False) -> dict[str, Any]:
        """The trade as the source topic carries it: Kraken's fields, `timestamp_ms` (so that
        the dataframe does not parse the time a second time) and, for a trade from REST,
        `origin: "rest"` (none means `ws`: live trades, nearly all of them, stay lean).

        :param decimal_strings: price and qty as exact decimal strings (`decimal_text`)
            instead of numbers.
        """
        price, qty = self.price, self.qty
        if decimal_strings:
            price, qty = decimal_text(price), decimal_text(qty)
        elif type(price) is not float or type(qty) is not float:
            price, qty = float(price), float(qty)  # an ExactFloat: a JSON number like any
        message = {
            "symbol": self.symbol,
            "side": self.side,
            "price": price,
            "qty": qty,
            "ord_type": self.ord_type,
            "trade_id": self.trade_id,
            "timestamp": self.timestamp,
            "timestamp_ms": self.timestamp_ms,
        }
        if origin != "ws":
            message["origin"] = origin
        return message
