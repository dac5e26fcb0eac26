"""OHLCV candles from trade records: the pure functions a Quix tumbling window runs.

    sdf.tumbling_window(...).reduce(reducer=add_trade, initializer=start_candle).final()
       .apply(candle_record)

A trade record is the trades pipeline's output (`pair`, `price`, `volume`, `trade_id`,
`timestamp_ms` are used; `price` and `volume` may be numbers or, with the trades pipeline's
`decimal_strings`, decimal strings). Open and close are the trades with the lowest and
highest `(timestamp_ms, trade_id)` in the window, whatever order the trades arrive in.
`first_trade_id` and `last_trade_id` are the lowest and highest trade_id in the window;
whether the candle is `complete` is decided after the window closes (`complete.py`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any, TypedDict

__all__ = ["CandleState", "add_trade", "candle_record", "is_trade", "start_candle"]

logger = logging.getLogger(__name__)

# a decimal string as `decimal_strings` writes it (schemas/trade.v1.json): no exponent, no
# trailing zeros
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*[1-9])?")


class CandleState(TypedDict):
    """What the window store keeps per pair and window (JSON: no tuples)."""

    pair: str
    open: float
    open_ms: int
    open_id: int
    high: float
    low: float
    close: float
    close_ms: int
    close_id: int
    volume: float
    notional: float  # sum of price * volume, for the VWAP
    trade_count: int
    first_trade_id: int  # the lowest trade_id in the window
    last_trade_id: int  # the highest


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_amount(value: Any) -> bool:
    """A number, or a decimal string (`decimal_strings`)."""
    if isinstance(value, str):
        return _DECIMAL.fullmatch(value) is not None
    return _is_number(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_trade(record: Any) -> bool:
    """True when `record` has what a candle needs; anything else is skipped and counted."""
    return (
        isinstance(record, Mapping)
        and isinstance(record.get("pair"), str)
        and _is_amount(record.get("price"))
        and float(record["price"]) > 0
        and _is_amount(record.get("volume"))
        and float(record["volume"]) >= 0
        and _is_whole(record.get("trade_id"))
        and _is_whole(record.get("timestamp_ms"))
    )


def start_candle(trade: Mapping[str, Any]) -> CandleState:
    """The window's state after its first trade (the window `initializer`)."""
    price, volume = float(trade["price"]), float(trade["volume"])
    at, trade_id = trade["timestamp_ms"], trade["trade_id"]
    return CandleState(
        pair=trade["pair"],
        open=price,
        open_ms=at,
        open_id=trade_id,
        high=price,
        low=price,
        close=price,
        close_ms=at,
        close_id=trade_id,
        volume=volume,
        notional=price * volume,
        trade_count=1,
        first_trade_id=trade_id,
        last_trade_id=trade_id,
    )


def add_trade(state: CandleState, trade: Mapping[str, Any]) -> CandleState:
    """The window's state with one more trade (the window `reducer`); `state` is not changed."""
    price, volume = float(trade["price"]), float(trade["volume"])
    trade_id = trade["trade_id"]
    order = (trade["timestamp_ms"], trade_id)
    # a window stored by a version before first/last_trade_id: its open and close ids
    first = state.get("first_trade_id", state["open_id"])
    last = state.get("last_trade_id", state["close_id"])
    updated = CandleState(
        **{
            **state,
            "high": max(state["high"], price),
            "low": min(state["low"], price),
            "volume": state["volume"] + volume,
            "notional": state["notional"] + price * volume,
            "trade_count": state["trade_count"] + 1,
            "first_trade_id": min(first, trade_id),
            "last_trade_id": max(last, trade_id),
        }
    )
    if order < (state["open_ms"], state["open_id"]):
        updated.update(open=price, open_ms=order[0], open_id=order[1])
    if order > (state["close_ms"], state["close_id"]):
        updated.update(close=price, close_ms=order[0], close_id=order[1])
    return updated


def candle_record(window: Mapping[str, Any]) -> dict[str, Any]:
    """A closed window (`{"start", "end", "value": CandleState}`) -> the output record.

    `vwap` is the volume-weighted average price; `None` if every trade had zero volume.
    `complete` is added by `complete.Continuity`, which knows the pair's previous candle.
    """
    state: CandleState = window["value"]
    volume = state["volume"]
    return {
        "pair": state["pair"],
        "open": state["open"],
        "high": state["high"],
        "low": state["low"],
        "close": state["close"],
        "volume": volume,
        "trade_count": state["trade_count"],
        "vwap": state["notional"] / volume if volume > 0 else None,
        "window_start_ms": window["start"],
        "window_end_ms": window["end"],
        "first_trade_id": state.get("first_trade_id", state["open_id"]),
        "last_trade_id": state.get("last_trade_id", state["close_id"]),
    }
