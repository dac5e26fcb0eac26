"""Kraken WebSocket API v2, sans I/O: frames in, events out; requests as text.

Nothing here touches a socket, so the whole protocol is testable with plain strings.
`parse_frame` never raises: what it cannot understand comes back as `Malformed`,
and the valid trades of a frame survive an invalid neighbour. Every text of an event that
the server chose (errors, statuses, excerpts) comes escaped and bounded (`text.printable`),
safe to log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from .text import printable
from .trade import ExactFloat, InvalidTrade, Trade

__all__ = [
    "Event",
    "Heartbeat",
    "Malformed",
    "Pong",
    "ServerError",
    "Status",
    "SubscribeAck",
    "SubscribeError",
    "TradeBatch",
    "parse_frame",
    "ping_request",
    "subscribe_request",
    "unsubscribe_request",
]

EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Status:
    """Connection status, sent first on every connection and on system changes."""

    system: str
    connection_id: int | None
    api_version: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The server's keep-alive, about once a second when nothing else is sent."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to an application-level `ping`."""

    req_id: int | None


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    """A successful (un)subscribe acknowledgement for one symbol."""

    method: str
    channel: str | None
    symbol: str | None
    req_id: int | None


@dataclass(frozen=True, slots=True)
class SubscribeError:
    """A failed (un)subscribe acknowledgement: `symbol` is None when the server named none."""

    method: str
    symbol: str | None
    error: str
    req_id: int | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error outside any request, e.g. `{"Error": "Exceeded msg rate"}`."""

    error: str


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """The valid trades of one `trade` message, in the order Kraken sent them."""

    kind: str  # "snapshot" | "update"
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Input that could not be understood, with the reason and a truncated excerpt."""

    reason: str
    excerpt: str


Event = (
    Status | Heartbeat | Pong | SubscribeAck | SubscribeError | ServerError | TradeBatch | Malformed
)

_HEARTBEAT = Heartbeat()


def excerpt(frame: str | bytes | Any, limit: int = EXCERPT_CHARS) -> str:
    """A printable view of a frame for logs: escaped, cut with a note of its length."""
    if isinstance(frame, (bytes, bytearray)):
        head = bytes(frame[: limit * 4]).decode("utf-8", "replace")  # a long frame: its start
        if len(frame) <= limit * 4:
            return printable(head, limit)
        return f"{printable(head[:limit], limit)}… ({len(frame)} bytes)"
    if not isinstance(frame, str):
        frame = repr(frame)
    return printable(frame, limit)


def parse_frame(frame: str | bytes, *, exact: bool = False) -> list[Event]:
    """Turn one WebSocket frame into protocol events. Never raises.

    A frame that strict JSON rejects only for a NaN, an Infinity, a number beyond a double or
    invalid UTF-8 somewhere is read leniently, so its valid trades survive; the trade that
    carries the oddity fails validation on its own.

    :param exact: for `decimal_strings`: every price and volume must give back its decimal
        exactly (`trade.decimal_text`). A float does when its text has at most 15 significant
        digits; orjson does not keep the text, so a frame that holds a longer number (16
        characters of digits and points in a row) is read by Python's JSON reader instead,
        which keeps it (`trade.ExactFloat`). Kraken's usual frames have none: they cost a
        regular-expression scan more.
    """
    if exact and _has_long_number(frame):
        message = _exact_loads(frame)
        if message is None:
            return [Malformed("not JSON", excerpt(frame))]
    else:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            message = _exact_loads(frame) if exact else _lenient_loads(frame)
            if message is None:
                return [Malformed(f"not JSON: {printable(exc)}", excerpt(frame))]
    if not isinstance(message, dict):
        return [Malformed("not a JSON object", excerpt(frame))]
    try:
        return _parse_message(message, frame)
    except Exception as exc:  # a shape we did not foresee: report, never crash
        return [Malformed(f"unexpected message shape: {printable(repr(exc))}", excerpt(frame))]


# 16 characters of a number in a row: maybe more than 15 significant digits (or not: then
# the frame is read the slow way for nothing, which is harmless). Found by mapping digits and
# points to "0", everything else to " " (bytes.translate: a fraction of orjson's time).
_NUMBER_CHARS = bytes(0x30 if chr(i) in "0123456789." else 0x20 for i in range(256))
_LONG_NUMBER = b"0" * 16


def _has_long_number(frame: str | bytes) -> bool:
    if isinstance(frame, str):
        frame = frame.encode("utf-8", "replace")
    return _LONG_NUMBER in bytes(frame).translate(_NUMBER_CHARS)


def _exact_loads(frame: str | bytes) -> Any:
    """Python's JSON reader, numbers with a fraction or exponent as `ExactFloat`; as lenient
    as `_lenient_loads` (which `parse_frame` tries only after orjson)."""
    try:
        text = frame.decode("utf-8", "replace") if isinstance(frame, (bytes, bytearray)) else frame
        return json.loads(text, parse_float=ExactFloat)
    except (ValueError, TypeError, RecursionError):
        return None


def _lenient_loads(frame: str | bytes) -> Any:
    """Python's JSON reader: NaN/Infinity allowed, huge numbers as inf, bad UTF-8 replaced."""
    try:
        text = frame.decode("utf-8", "replace") if isinstance(frame, (bytes, bytearray)) else frame
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None


def _parse_message(message: dict[str, Any], frame: str | bytes) -> list[Event]:
    channel = message.get("channel")
    if channel == "trade":
        return _parse_trades(message, frame)
    if channel == "heartbeat":
        return [_HEARTBEAT]
    if channel == "status":
        return _parse_status(message, frame)
    method = message.get("method")
    if method in ("subscribe", "unsubscribe"):
        return [_parse_ack(message, method)]
    if method == "pong":
        return [Pong(_req_id(message))]
    error = message.get("error", message.get("Error"))
    if isinstance(error, str) and method is None:
        return [ServerError(printable(error))]
    if channel is not None:
        return [Malformed(f"unknown channel '{printable(channel, 40)}'", excerpt(frame))]
    return [Malformed("unknown message", excerpt(frame))]


def _parse_trades(message: dict[str, Any], frame: str | bytes) -> list[Event]:
    kind = message.get("type")
    data = message.get("data")
    if kind not in ("snapshot", "update") or not isinstance(data, list):
        reason = "trade message needs type snapshot|update and a data array"
        return [Malformed(reason, excerpt(frame))]
    trades: list[Trade] = []
    events: list[Event] = []
    for item in data:
        try:
            trades.append(Trade.from_kraken(item))
        except InvalidTrade as exc:
            text = orjson.dumps(item, default=float)  # default: an ExactFloat (exact)
            events.append(Malformed(f"invalid trade: {printable(exc)}", excerpt(text)))
    if trades:
        events.insert(0, TradeBatch(kind, tuple(trades)))
    return events


def _parse_status(message: dict[str, Any], frame: str | bytes) -> list[Event]:
    data = message.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return [Malformed("status message without data", excerpt(frame))]
    info = data[0]
    connection_id = info.get("connection_id")
    return [
        Status(
            system=printable(info.get("system", "unknown")),
            connection_id=connection_id if isinstance(connection_id, int) else None,
            api_version=_optional_text(info.get("api_version")),
            version=_optional_text(info.get("version")),
        )
    ]


def _optional_text(value: Any) -> str | None:
    return None if value is None else printable(value)


def _parse_ack(message: dict[str, Any], method: str) -> Event:
    req_id = _req_id(message)
    if message.get("success") is True:
        result = message.get("result")
        result = result if isinstance(result, dict) else {}
        return SubscribeAck(method, result.get("channel"), result.get("symbol"), req_id)
    symbol = message.get("symbol")
    return SubscribeError(
        method=method,
        symbol=symbol if isinstance(symbol, str) else None,
        error=printable(message.get("error", "unknown error")),
        req_id=req_id,
    )


def _req_id(message: dict[str, Any]) -> int | None:
    req_id = message.get("req_id")
    return req_id if isinstance(req_id, int) and not isinstance(req_id, bool) else None


def subscribe_request(symbols: Iterable[str], *, snapshot: bool, req_id: int) -> str:
    """One subscribe request for every symbol (Kraken rate-limits bursts of requests)."""
    params = {"channel": "trade", "symbol": list(symbols), "snapshot": snapshot}
    return orjson.dumps({"method": "subscribe", "params": params, "req_id": req_id}).decode()


def unsubscribe_request(symbols: Iterable[str], *, req_id: int) -> str:
    """One unsubscribe request for every symbol (acknowledged per symbol like a subscribe)."""
    params = {"channel": "trade", "symbol": list(symbols)}
    return orjson.dumps({"method": "unsubscribe", "params": params, "req_id": req_id}).decode()


def ping_request(req_id: int) -> str:
    """An application-level ping; the server answers with `Pong`."""
    return orjson.dumps({"method": "ping", "req_id": req_id}).decode()
