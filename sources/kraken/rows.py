"""Kraken's REST `Trades` rows, read: pure parsing, no I/O.

A row is `["65000.10000","0.01000000",1695628177.708706,"s","m","",4665906]`. One unreadable
row never costs its page: it stays in its place as a `BadRow`, so the reader knows how many
rows Kraken served and where the broken one sits (the core needs both to prove anything).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from .text import printable
from .trade import ExactFloat, InvalidTrade, Trade

__all__ = [
    "BadRow",
    "Rows",
    "TradesPage",
    "parse_trade_row",
    "parse_trades_result",
    "rest_row_to_trade",
    "v2_symbol",
]

# Kraken's REST names some assets the old way; WebSocket v2 uses the common codes.
ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
SIDES = {"b": "buy", "s": "sell"}
ORDER_TYPES = {"m": "market", "l": "limit"}
ROW_FIELDS = 7  # price, volume, time, side, order type, misc, trade_id
EXCERPT_CHARS = 200
# A decimal as Kraken writes prices, volumes and cursors: digits, maybe a fraction, no sign,
# no exponent (float() alone would also take "NaN", "inf", "1_000" and " 1e3 ").
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_UNSIGNED = re.compile(r"[0-9]+")
_MICROS = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class BadRow:
    """A `Trades` row that could not be read, skipped from its page.

    :param trade_id: the row's trade_id when that field at least is readable, else None.
    :param reason: what is wrong with it (escaped: `text.printable`).
    :param excerpt: the row as received, escaped and shortened for the log.
    """

    trade_id: int | None
    reason: str
    excerpt: str


class Rows:
    """Mixin of a page's `rows` split by kind (the page itself keeps them in Kraken's order)."""

    __slots__ = ()
    rows: tuple[Trade | BadRow, ...]

    @property
    def trades(self) -> tuple[Trade, ...]:
        """The readable rows."""
        return tuple(row for row in self.rows if type(row) is Trade)

    @property
    def bad_rows(self) -> tuple[BadRow, ...]:
        """The unreadable rows, in page order."""
        return tuple(row for row in self.rows if type(row) is BadRow)


@dataclass(frozen=True, slots=True)
class TradesPage(Rows):
    """One page of `Trades`: every row Kraken served, in its order, and the cursor.

    :param rows: a `Trade` per readable row and a `BadRow` per unreadable one, in Kraken's
        order (trade_id ascending): `len(rows)` is what Kraken served.
    :param last_ns: Kraken's `last` cursor (the time of the page's last row).
    """

    rows: tuple[Trade | BadRow, ...]
    last_ns: int


# --- pure parsing -----------------------------------------------------------------------


def v2_symbol(wsname: str) -> str:
    """AssetPairs' `wsname` (`XBT/USD`) -> the WebSocket v2 symbol (`BTC/USD`)."""
    base, _, quote = wsname.partition("/")
    return f"{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"


def parse_trade_row(symbol: str, row: Any) -> Trade | BadRow:
    """`["65000.1","0.01",1695628177.708706,"s","m","",4665906]` -> `Trade` of `symbol`.

    Never raises: anything unreadable (a missing field, a non-numeric, NaN, infinite or
    non-positive price or volume, a trade_id that is not an integer...) gives a `BadRow`.
    The time keeps whole microseconds, as the WebSocket's `timestamp` does (Kraken's REST
    sends 100 ns: the seventh decimal is dropped, never rounded up).
    """
    try:
        return _row_to_trade(symbol, row)
    except Exception as exc:  # whatever the row holds, it costs itself only
        reason = printable(str(exc) or type(exc).__name__)  # it may quote the row
        return BadRow(_readable_trade_id(row), reason, _excerpt(row))


def rest_row_to_trade(symbol: str, row: Any) -> Trade:
    """`parse_trade_row` for callers that want an exception.

    :raises InvalidTrade: naming what is wrong with the row.
    """
    parsed = parse_trade_row(symbol, row)
    if isinstance(parsed, BadRow):
        raise InvalidTrade(f"REST row {parsed.excerpt}: {parsed.reason}")
    return parsed


def parse_trades_result(symbol: str, key: str, result: Any) -> TradesPage:
    """The `result` object of a `Trades` answer -> `TradesPage`.

    :param key: the result key Kraken is expected to use (`XXBTZUSD`); any other key than
        `last` is taken when it is absent.
    :raises ValueError: when the answer's shape is wrong (no rows array, no `last` cursor):
        the page as a whole cannot be trusted.
    """
    if not isinstance(result, dict):
        raise ValueError(f"Trades result is {type(result).__name__}, not an object")
    rows = result.get(key)
    if rows is None:  # the key may be either name
        rows = next((v for k, v in result.items() if k != "last"), None)
    if not isinstance(rows, list):
        raise ValueError(f"Trades result has no rows array (keys {sorted(result)})")
    last = result.get("last")
    if isinstance(last, bool) or not (
        (isinstance(last, int) and last >= 0)
        or (isinstance(last, str) and _UNSIGNED.fullmatch(last))
    ):
        raise ValueError(f"Trades result has no valid `last` cursor: {last!r}")
    return TradesPage(tuple(parse_trade_row(symbol, row) for row in rows), int(last))


def _row_to_trade(symbol: str, row: Any) -> Trade:
    if not isinstance(row, list | tuple):
        raise InvalidTrade(f"row must be an array, got {type(row).__name__}")
    if len(row) < ROW_FIELDS:  # more is tolerated: Kraken once appended trade_id
        raise InvalidTrade(f"row has {len(row)} fields, expected {ROW_FIELDS}")
    price, volume, seconds, side, order_type, _misc, trade_id = row[:ROW_FIELDS]
    if isinstance(trade_id, bool) or not isinstance(trade_id, int) or trade_id < 0:
        raise InvalidTrade(f"trade_id must be a non-negative integer, got {trade_id!r}")
    micros = _decimal(seconds, "time") * _MICROS
    micros_int = int(micros)  # truncates: whole microseconds, as the WebSocket writes them
    stamp = datetime.fromtimestamp(micros_int // 1_000_000, UTC).replace(
        microsecond=micros_int % 1_000_000
    )
    return Trade.from_kraken(
        {
            "symbol": symbol,
            "side": SIDES.get(side, side) if isinstance(side, str) else side,
            "price": _number(price, "price"),
            "qty": _number(volume, "volume"),
            "ord_type": ORDER_TYPES.get(order_type, order_type)
            if isinstance(order_type, str)
            else order_type,
            "trade_id": trade_id,
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )


def _number(value: Any, field: str) -> float:
    """A price or volume: Kraken's decimal string keeps its text (`ExactFloat`, for
    `decimal_strings`); a JSON number is a float."""
    number = _decimal(value, field)
    return ExactFloat(value) if isinstance(value, str) else float(number)


def _decimal(value: Any, field: str) -> Decimal:
    """A positive, finite decimal from Kraken's string (`"105433.60000"`) or a JSON number."""
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise InvalidTrade(f"{field} {value!r} is not a decimal number")
        number = Decimal(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidTrade(f"{field} {value!r} is not finite")
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        raise InvalidTrade(f"{field} must be a decimal string or number, got {value!r}")
    if not number > 0 or not math.isfinite(float(number)):
        raise InvalidTrade(f"{field} must be positive and finite, got {value!r}")
    return number


def _readable_trade_id(row: Any) -> int | None:
    """The trade_id of a bad row, when it can be told: the 7th field, else the last one."""
    if not isinstance(row, list | tuple) or not row:
        return None
    candidate = row[ROW_FIELDS - 1] if len(row) >= ROW_FIELDS else row[-1]
    if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate >= 0:
        return candidate
    return None


def _excerpt(row: Any) -> str:
    try:
        text = orjson.dumps(row).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(row)
    return printable(text, EXCERPT_CHARS)
