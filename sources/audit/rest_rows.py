"""Kraken's REST `Trades` and `AssetPairs` answers, read by the audit itself. No I/O.

Written apart from the pipeline's parser on purpose: a parser shared by the pipeline and its
audit would hide its own faults. The answer is read with the standard JSON reader keeping
every number's text (`Decimal`), so a trade's time is Kraken's to the last digit:

    {"error": [], "result": {"XXBTZUSD": [["65000.10000", "0.01000000", 1695628177.7087069,
     "s", "m", "", 4665906], ...], "last": "1695628177708706900"}}

Row: price (text), volume (text), time (unix seconds), side `b`/`s`, order type `m`/`l`,
misc, trade_id. The result's key may be Kraken's internal name; `last` is a cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "KrakenError",
    "RestTrade",
    "TradesAnswer",
    "plain_decimal",
    "read_asset_pairs",
    "read_trades",
]

SIDES = {"b": "buy", "s": "sell"}
ORDER_TYPES = {"m": "market", "l": "limit"}
ALIASES = {"XBT": "BTC", "XDG": "DOGE"}  # AssetPairs' wsname still spells these the old way
_NS = Decimal(1_000_000_000)


class KrakenError(RuntimeError):
    """Kraken answered with errors (`error` array) or an answer of the wrong shape.

    :param messages: Kraken's error strings, e.g. `EGeneral:Too many requests`.
    """

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages

    @property
    def throttled(self) -> bool:
        return any(
            m.startswith(("EGeneral:Too many requests", "EAPI:Rate limit")) for m in self.messages
        )


@dataclass(frozen=True, slots=True)
class RestTrade:
    """One row of `Trades`, exactly as Kraken wrote it.

    :param time_ns: the time, in ns (Kraken's decimal seconds times 10^9, exact).
    :param side: `buy`/`sell` (or the letter Kraken sent, if it is neither).
    """

    trade_id: int
    price: str
    volume: str
    time_ns: int
    side: str
    order_type: str

    @property
    def time_us(self) -> int:
        """Whole microseconds, truncated: what the WebSocket's timestamp carries."""
        return self.time_ns // 1000


@dataclass(frozen=True, slots=True)
class TradesAnswer:
    """A `Trades` page: its readable rows in Kraken's order, the unreadable ones, the cursor."""

    trades: tuple[RestTrade, ...]
    bad_rows: tuple[str, ...]
    last: int | None


def _answer(body: bytes) -> Any:
    """The `result` of an answer, after its `error` array."""
    try:
        answer = json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise KrakenError([f"answer is not JSON: {exc}"]) from None
    if not isinstance(answer, dict):
        raise KrakenError([f"answer is {type(answer).__name__}, not an object"])
    errors = answer.get("error") or []
    if errors:
        raise KrakenError([str(e) for e in (errors if isinstance(errors, list) else [errors])])
    if "result" not in answer:
        raise KrakenError(["answer has no result"])
    return answer["result"]


def read_trades(body: bytes) -> TradesAnswer:
    """The body of a `Trades` answer -> its rows.

    :raises KrakenError: Kraken's errors (throttling among them), or a body of the wrong shape.
    """
    result = _answer(body)
    if not isinstance(result, dict):
        raise KrakenError([f"Trades result is {type(result).__name__}, not an object"])
    rows = next((v for k, v in result.items() if k != "last"), None)
    if not isinstance(rows, list):
        raise KrakenError([f"Trades result has no rows (keys {sorted(result)})"])
    trades, bad = [], []
    for row in rows:
        trade = _row(row)
        if trade is None:
            bad.append(json.dumps(row, default=str)[:200])
        else:
            trades.append(trade)
    last = result.get("last")
    cursor = int(last) if isinstance(last, (str, int)) and str(last).isdigit() else None
    return TradesAnswer(tuple(trades), tuple(bad), cursor)


def _row(row: Any) -> RestTrade | None:
    if not isinstance(row, list) or len(row) < 7:
        return None
    price, volume, seconds, side, order_type, _misc, trade_id = row[:7]
    if type(trade_id) is not int or trade_id < 0:
        return None
    if not isinstance(price, str) or not isinstance(volume, str):
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, Decimal, str)):
        return None
    try:
        time_ns = int(Decimal(seconds) * _NS)
        Decimal(price), Decimal(volume)  # readable numbers, else the row is bad
    except (InvalidOperation, ValueError):
        return None
    return RestTrade(
        trade_id,
        price,
        volume,
        time_ns,
        SIDES.get(side, str(side)),
        ORDER_TYPES.get(order_type, str(order_type)),
    )


def read_asset_pairs(body: bytes) -> dict[str, str]:
    """The body of an `AssetPairs` answer -> v2 symbol (`BTC/USD`) -> the name to ask
    `Trades` for (`XBTUSD`).

    :raises KrakenError: as `read_trades`.
    """
    result = _answer(body)
    if not isinstance(result, dict):
        raise KrakenError([f"AssetPairs result is {type(result).__name__}, not an object"])
    names = {}
    for key, info in result.items():
        wsname = info.get("wsname") if isinstance(info, dict) else None
        if isinstance(wsname, str) and "/" in wsname:
            base, _, quote = wsname.partition("/")
            symbol = f"{ALIASES.get(base, base)}/{ALIASES.get(quote, quote)}"
            altname = info.get("altname")
            names[symbol] = altname if isinstance(altname, str) else key
    return names


def plain_decimal(text: str) -> str:
    """Kraken's decimal text in the form `decimal_strings` writes: no trailing zeros, no
    trailing point (`"105433.60000"` -> `"105433.6"`, `"65000.00000"` -> `"65000"`)."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
