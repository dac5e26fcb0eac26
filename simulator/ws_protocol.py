"""The server side of Kraken WebSocket API v2: the messages the simulator sends."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson

from .market import SimTrade

__all__ = [
    "heartbeat",
    "pong",
    "rate_limited",
    "status",
    "subscribe_failure",
    "subscribe_success",
    "trade_frame",
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def status(connection_id: int | None = None, system: str = "online") -> str:
    info = {
        "api_version": "v2",
        "connection_id": connection_id or random.getrandbits(64),
        "system": system,
        "version": "2.0.4",
    }
    return _dump({"channel": "status", "type": "update", "data": [info]})


def heartbeat() -> str:
    return '{"channel":"heartbeat"}'


def pong(req_id: Any, time_in: str) -> str:
    message: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        message["req_id"] = req_id
    message.update(time_in=time_in, time_out=_now())
    return _dump(message)


def subscribe_success(method: str, symbol: str, snapshot: bool, req_id: Any, time_in: str) -> str:
    message: dict[str, Any] = {"method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message.update(
        result={"channel": "trade", "snapshot": snapshot, "symbol": symbol},
        success=True,
        time_in=time_in,
        time_out=_now(),
    )
    return _dump(message)


def subscribe_failure(
    method: str, error: str, symbol: str | None, req_id: Any, time_in: str
) -> str:
    message: dict[str, Any] = {"error": error, "method": method}
    if req_id is not None:
        message["req_id"] = req_id
    message["success"] = False
    if symbol is not None:
        message["symbol"] = symbol
    message.update(time_in=time_in, time_out=_now())
    return _dump(message)


def rate_limited() -> str:
    return '{"Error":"Exceeded msg rate"}'


def trade_frame(kind: str, trades: list[SimTrade]) -> str:
    return _dump({"channel": "trade", "type": kind, "data": [t.to_ws() for t in trades]})


def now() -> str:
    """The current time as Kraken writes `time_in`."""
    return _now()
