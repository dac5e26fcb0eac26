"""OHLCV candles from trade records: the pure functions a Quix tumbling window runs.

    sdf.tumbling_window(...).reduce(reducer=add_trade, initializer=start_candle).final()
       .apply(candle_record)

A trade record is the trades pipeline's output (`pair`, `price`, `volume`, `trade_id`,
`timestamp_ms` are used). Open and close are the trades with the lowest and highest
`(timestamp_ms, trade_id)` in the window, whatever order the trades arrive in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, TypedDict

__all__ = ["CandleState", "add_trade", "candle_record", "is_trade", "start_candle"]

logger = logging.getLogger(__name__)


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_trade(record: Any) -> bool:
    """True when `record` has what a candle needs; anything else is skipped and counted."""
    return (
        isinstance(record, Mapping)
        and isinstance(record.get("pair"), str)
        and _is_number(record.get("price"))
        and record["price"] > 0
        and _is_number(record.get("volume"))
        and record["volume"] >= 0
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
    )


def add_trade(state: CandleState, trade: Mapping[str, Any]) -> CandleState:
    """The window's state with one more trade (the window `reducer`); `state` is not changed."""
    price, volume = float(trade["price"]), float(trade["volume"])
    order = (trade["timestamp_ms"], trade["trade_id"])
    updated = CandleState(
        **{
            **state,
            "high": max(state["high"], price),
            "low": min(state["low"], price),
            "volume": state["volume"] + volume,
            "notional": state["notional"] + price * volume,
            "trade_count": state["trade_count"] + 1,
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
    }
