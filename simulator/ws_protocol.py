"""The server side of Kraken WebSocket API v2: the JSON messages the simulator sends.

Pure functions returning text, ready for `connection.send` (a `str` goes out as a text frame).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from .market import SimTrade

__all__ = [
    "channel_subscribed",
    "heartbeat",
    "instrument_snapshot",
    "now",
    "pong",
    "rate_limited",
    "status",
    "subscribe_failure",
    "subscribe_success",
    "trade_frame",
]

HEARTBEAT = '{"channel":"heartbeat"}'
RATE_LIMITED = '{"Error":"Exceeded msg rate"}'


def now() -> str:
    """The current time as Kraken writes `time_in`/`time_out`: RFC 3339, microseconds, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def status(connection_id: int | None = None, system: str = "online") -> str:
    """The status update sent first on every connection (a random 64-bit connection_id)."""
    info = {
        "api_version": "v2",
        "connection_id": random.getrandbits(64) if connection_id is None else connection_id,
        "system": system,
        "version": "2.0.4",
    }
    return _dump({"channel": "status", "type": "update", "data": [info]})


def heartbeat() -> str:
    """The heartbeat sent when nothing else was sent for a while."""
    return HEARTBEAT


def pong(req_id: Any, time_in: str) -> str:
    """The answer to `{"method":"ping"}`, echoing `req_id` when the ping had one."""
    message: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        message["req_id"] = req_id
    message.update(time_in=time_in, time_out=now())
    return _dump(message)


def subscribe_success(method: str, symbol: str, snapshot: bool, req_id: Any, time_in: str) -> str:
    """The acknowledgement of one symbol of a (un)subscribe request."""
    message: dict[str, Any] = {"method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message.update(
        result={"channel": "trade", "snapshot": snapshot, "symbol": symbol},
        success=True,
        time_in=time_in,
        time_out=now(),
    )
    return _dump(message)


def subscribe_failure(
    method: str, error: str, symbol: str | None, req_id: Any, time_in: str
) -> str:
    """A failed (un)subscribe: of one symbol, or of the whole request when `symbol` is None."""
    message: dict[str, Any] = {"error": error, "method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message["success"] = False
    if symbol is not None:
        message["symbol"] = symbol
    message.update(time_in=time_in, time_out=now())
    return _dump(message)


def rate_limited() -> str:
    """The answer to subscribe requests sent too fast."""
    return RATE_LIMITED


def trade_frame(kind: str, trades: Iterable[SimTrade]) -> str:
    """A `trade` message of type `snapshot` or `update` holding `trades`."""
    return _dump({"channel": "trade", "type": kind, "data": [t.to_ws() for t in trades]})


def instrument_snapshot(pairs: Iterable[tuple[str, str]]) -> str:
    """The `instrument` channel's snapshot: every listed pair, as (symbol, status)."""
    listed = []
    assets: dict[str, dict[str, Any]] = {}
    for symbol, status in pairs:
        base, _, quote = symbol.partition("/")
        for asset in (base, quote):
            assets.setdefault(asset, {"id": asset, "status": "enabled", "precision": 8})
        listed.append(
            {
                "symbol": symbol,
                "base": base,
                "quote": quote,
                "status": status,
                "qty_precision": 8,
                "qty_increment": 1e-08,
                "price_precision": 5,
                "cost_precision": 5,
                "marginable": False,
                "has_index": True,
                "cost_min": 0.5,
                "tick_size": 1e-05,
                "price_increment": 1e-05,
                "qty_min": 0.0001,
            }
        )
    data = {"assets": list(assets.values()), "pairs": listed}
    return _dump({"channel": "instrument", "type": "snapshot", "data": data})


def channel_subscribed(method: str, channel: str, snapshot: bool, req_id: Any, time_in: str) -> str:
    """The acknowledgement of a (un)subscribe to a channel without symbols (`instrument`)."""
    message: dict[str, Any] = {"method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message.update(
        result={"channel": channel, "snapshot": snapshot},
        success=True,
        time_in=time_in,
        time_out=now(),
    )
    return _dump(message)
