"""`pairs=all` and patterns (`*/USD`, `BTC/*`): resolved once, at start, from Kraken's own list.

Kraken's WebSocket v2 `instrument` channel lists every pair by its v2 symbol with its status:

    -> {"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":1}
    <- {"channel":"instrument","type":"snapshot","data":{"assets":[...],"pairs":[
         {"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online", ...}, ...]}}

When that channel does not answer, REST `AssetPairs` is the fallback: its `wsname` spells
Kraken's old asset codes (`XBT/USD`, `XDG/USD`), mapped to v2's (`BTC/USD`, `DOGE/USD`).

A pattern takes only pairs whose status is `online`: the others (`maintenance`,
`cancel_only`, `post_only`, `limit_only`, `reduce_only`, `delisted`, `work_in_progress`) are
left out and logged with their status. A symbol named explicitly is always kept (the user
asked for it; a warning says when it is not online), but must be listed by Kraken.

`resolve` is pure (tests drive it with lists); `fetch_instruments`, `fetch_asset_pairs` and
`resolve_pairs` do the I/O.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .config import ALL, PAIR_PATTERN, ConfigError, has_patterns, is_pattern
from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_MESSAGE, CappedWebSocket, read_body
from .text import printable

__all__ = [
    "ONLINE",
    "Instrument",
    "InstrumentsUnavailable",
    "Resolution",
    "fetch_asset_pairs",
    "fetch_instruments",
    "parse_instrument_snapshot",
    "resolve",
    "resolve_pairs",
]

logger = logging.getLogger(__name__)

ONLINE = "online"
FETCH_ATTEMPTS = 3  # tries of the instrument channel before the REST fallback
RETRY_DELAY = 1.0  # seconds before the second try; doubles
LOG_LIST_LIMIT = 50  # most symbols listed in one log line


class InstrumentsUnavailable(RuntimeError):
    """Neither the instrument channel nor `AssetPairs` gave Kraken's list of pairs (the
    message, which may quote the server, comes escaped: `text.printable`)."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message, 500))


@dataclass(frozen=True, slots=True)
class Instrument:
    """A pair as Kraken lists it: its v2 symbol and trading status."""

    symbol: str
    status: str


@dataclass(frozen=True)
class Resolution:
    """What `pairs` stands for.

    :param pairs: the v2 symbols to stream, explicit ones first, in the order given, then
        each pattern's matches in alphabetical order.
    :param left_out: (symbol, why) of pairs a pattern matched but that are not taken.
    :param from_patterns: the pairs that came from `all` or a pattern only: when Kraken
        refuses one of them at subscribe time it is left out, not fatal.
    :param unknown: explicit symbols Kraken does not list (a typo).
    :param unmatched: patterns that matched no online pair.
    """

    pairs: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()
    from_patterns: frozenset[str] = field(default_factory=frozenset)
    unknown: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()


def resolve(specs: Sequence[str], instruments: Iterable[Instrument] | None) -> Resolution:
    """Symbols and patterns (`parse_pairs`' output) -> the pairs to stream.

    :param instruments: Kraken's list; None when `specs` holds no pattern (nothing to look up:
        explicit symbols are taken as they are and Kraken judges them at subscribe time).
    """
    if instruments is None:
        if has_patterns(specs):
            raise ValueError("patterns need Kraken's list of instruments")
        return Resolution(tuple(specs))
    listed: dict[str, str] = {}
    for instrument in instruments:
        listed.setdefault(instrument.symbol, instrument.status)
    chosen: list[str] = []
    taken: set[str] = set()
    left_out: dict[str, str] = {}
    unknown: list[str] = []
    unmatched: list[str] = []
    explicit = {spec for spec in specs if not is_pattern(spec)}
    for spec in specs:
        if not is_pattern(spec):
            if spec not in listed:
                unknown.append(spec)
            elif spec not in taken:
                chosen.append(spec)
                taken.add(spec)
            continue
        matched = False
        for symbol in sorted(listed):
            if not _matches(symbol, spec):
                continue
            status = listed[symbol]
            if status != ONLINE:
                if symbol not in explicit:
                    left_out.setdefault(symbol, f"status {status}")
                continue
            if not PAIR_PATTERN.match(symbol):
                left_out.setdefault(symbol, "not a BASE/QUOTE symbol")
                continue
            matched = True
            if symbol not in taken:
                chosen.append(symbol)
                taken.add(symbol)
        if not matched:
            unmatched.append(spec)
    for symbol in taken:
        left_out.pop(symbol, None)
    return Resolution(
        pairs=tuple(chosen),
        left_out=tuple(sorted(left_out.items())),
        from_patterns=frozenset(taken - explicit),
        unknown=tuple(unknown),
        unmatched=tuple(unmatched),
    )


def _matches(symbol: str, spec: str) -> bool:
    return spec == ALL or fnmatch.fnmatchcase(symbol, spec)


# --- Kraken's list --------------------------------------------------------------------------


def parse_instrument_snapshot(message: Any) -> list[Instrument] | None:
    """The pairs of an `instrument` snapshot message; None for any other message."""
    if not isinstance(message, dict) or message.get("channel") != "instrument":
        return None
    if message.get("type") != "snapshot":
        return None
    data = message.get("data")
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list):
        raise ValueError("instrument snapshot without a pairs array")
    instruments = []
    for item in pairs:
        if isinstance(item, dict) and isinstance(item.get("symbol"), str):
            status = item.get("status") or "unknown"
            instruments.append(Instrument(printable(item["symbol"], 40), printable(status, 40)))
    return instruments


def fetch_instruments(
    ws_url: str, *, timeout: float = 10.0, max_message: int = DEFAULT_MAX_MESSAGE
) -> list[Instrument]:
    """Every pair Kraken lists, from the WebSocket `instrument` channel's snapshot.

    :param max_message: most bytes of one message (`limits.CappedWebSocket`).
    :raises InstrumentsUnavailable: no snapshot within `timeout` seconds, or an error.
    """
    import websocket  # only here: the pure part of this module needs no WebSocket client

    deadline = time.monotonic() + timeout
    try:
        ws = websocket.create_connection(
            ws_url,
            timeout=timeout,
            enable_multithread=False,
            class_=functools.partial(CappedWebSocket, max_message=max_message),
        )
    except (websocket.WebSocketException, OSError) as exc:
        raise InstrumentsUnavailable(f"cannot connect to {ws_url}: {exc}") from exc
    try:
        request = {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}}
        ws.send(orjson.dumps({**request, "req_id": 1}).decode())
        while (left := deadline - time.monotonic()) > 0:
            ws.settimeout(left)
            message = orjson.loads(ws.recv())
            if isinstance(message, dict) and message.get("success") is False:
                raise InstrumentsUnavailable(f"instrument channel refused: {message.get('error')}")
            instruments = parse_instrument_snapshot(message)
            if instruments is not None:
                return instruments
    except (websocket.WebSocketException, OSError, ValueError) as exc:
        raise InstrumentsUnavailable(f"instrument channel of {ws_url}: {exc}") from exc
    finally:
        try:
            ws.close(timeout=0.5)
        except (websocket.WebSocketException, OSError):
            ws.shutdown()
    raise InstrumentsUnavailable(f"no instrument snapshot from {ws_url} within {timeout:g} s")


def fetch_asset_pairs(
    rest_url: str, *, timeout: float = 10.0, max_body: int = DEFAULT_MAX_BODY
) -> list[Instrument]:
    """Every pair Kraken lists, from REST `AssetPairs` (v2 symbols from `wsname`).

    :param max_body: most bytes of the answer (`limits.read_body`).
    :raises InstrumentsUnavailable: on any failure.
    """
    import httpx

    from .limits import BodyTooBig
    from .rows import v2_symbol

    url = f"{rest_url.rstrip('/')}/0/public/AssetPairs"
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            body = orjson.loads(read_body(response, max_body))
    except (httpx.HTTPError, orjson.JSONDecodeError, BodyTooBig) as exc:
        raise InstrumentsUnavailable(f"AssetPairs of {rest_url}: {exc}") from exc
    if not isinstance(body, dict) or body.get("error") or not isinstance(body.get("result"), dict):
        error = body.get("error") if isinstance(body, dict) else body
        raise InstrumentsUnavailable(f"AssetPairs of {rest_url} answered {error!r}")
    instruments = []
    for info in body["result"].values():
        wsname = info.get("wsname") if isinstance(info, dict) else None
        if isinstance(wsname, str) and "/" in wsname:  # pairs without one are not on WS v2
            status = printable(info.get("status", ONLINE), 40)
            instruments.append(Instrument(printable(v2_symbol(wsname), 40), status))
    return instruments


def kraken_instruments(
    ws_url: str,
    rest_url: str | None,
    *,
    timeout: float = 10.0,
    attempts: int = FETCH_ATTEMPTS,
    max_message: int = DEFAULT_MAX_MESSAGE,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[Instrument]:
    """Kraken's list: the instrument channel (retried), else `AssetPairs`.

    :param max_message, max_body: the size limits (`limits.py`).
    :raises InstrumentsUnavailable: when neither answers.
    """
    delay = RETRY_DELAY
    problem: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return fetch_instruments(ws_url, timeout=timeout, max_message=max_message)
        except InstrumentsUnavailable as exc:
            problem = exc
            logger.warning("Kraken's list of pairs (attempt %d/%d): %s", attempt, attempts, exc)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    if rest_url:
        logger.warning("Falling back to Kraken REST AssetPairs for the list of pairs")
        return fetch_asset_pairs(rest_url, timeout=timeout, max_body=max_body)
    raise InstrumentsUnavailable(str(problem))


def resolve_pairs(
    specs: Sequence[str],
    ws_url: str,
    rest_url: str | None = None,
    *,
    timeout: float = 10.0,
    attempts: int = FETCH_ATTEMPTS,
    setting: str = "pairs",
    max_message: int = DEFAULT_MAX_MESSAGE,
    max_body: int = DEFAULT_MAX_BODY,
) -> Resolution:
    """Resolve `specs` (symbols and patterns) to v2 symbols; log what was taken and left out.

    Explicit symbols only: no network call (Kraken judges them when subscribing).
    :raises ConfigError: an explicit symbol Kraken does not list, or nothing to stream.
    :raises InstrumentsUnavailable: patterns, and Kraken's list could not be had.
    """
    if not has_patterns(specs):
        return resolve(specs, None)
    instruments = kraken_instruments(
        ws_url,
        rest_url,
        timeout=timeout,
        attempts=attempts,
        max_message=max_message,
        max_body=max_body,
    )
    resolution = resolve(specs, instruments)
    if resolution.unknown:
        raise ConfigError(
            f"{setting}: {', '.join(resolution.unknown)} not among the {len(instruments)} pairs "
            "Kraken lists"
        )
    _log_resolution(resolution, specs, instruments, setting)
    if not resolution.pairs:
        raise ConfigError(f"{setting}: {','.join(specs)} matches no online Kraken pair")
    return resolution


def _log_resolution(
    resolution: Resolution, specs: Sequence[str], instruments: Sequence[Instrument], setting: str
) -> None:
    """Say what the patterns took and left out, and which named pairs are not online."""
    online = sum(1 for i in instruments if i.status == ONLINE)
    logger.info(
        "%s=%s: %d pairs to stream (Kraken lists %d, %d of them online): %s",
        setting,
        ",".join(specs),
        len(resolution.pairs),
        len(instruments),
        online,
        _some(resolution.pairs),
    )
    if resolution.left_out:
        by_reason: dict[str, list[str]] = {}
        for symbol, reason in resolution.left_out:
            by_reason.setdefault(reason, []).append(symbol)
        logger.info(
            "Left out %d pairs that the patterns match: %s",
            len(resolution.left_out),
            "; ".join(f"{reason}: {', '.join(symbols)}" for reason, symbols in by_reason.items()),
        )
    logger.debug("Pairs to stream: %s", ", ".join(resolution.pairs))
    for spec in specs:
        if not is_pattern(spec):
            status = next((i.status for i in instruments if i.symbol == spec), ONLINE)
            if status != ONLINE:
                logger.warning("%s is %s at Kraken: kept, as it is named explicitly", spec, status)
    for pattern in resolution.unmatched:
        logger.warning("%s: %s matches no online pair", setting, pattern)


def _some(symbols: Sequence[str]) -> str:
    if len(symbols) <= LOG_LIST_LIMIT:
        return ", ".join(symbols)
    return f"{', '.join(symbols[:LOG_LIST_LIMIT])} and {len(symbols) - LOG_LIST_LIMIT} more"
