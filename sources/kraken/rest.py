"""Kraken's public REST market data (`AssetPairs`, `Trades`), with Kraken's etiquette.

- at most one call per `min_interval` seconds (Kraken's public limit is about 1/s);
- throttling arrives as HTTP 200 with `{"error": ["EGeneral:Too many requests"]}` (and, from
  the edge, as HTTP 429), so the `error` array of every answer is read;
- every failure is taken for a delay, never for an answer about the data: any HTTP status,
  any Kraken error (`EGeneral:Internal error`, `EGeneral:Temporary lockout`, `EService:*`,
  unknown ones), timeouts and malformed answers are retried with exponential backoff,
  honouring `Retry-After`. Two answers only are final: `UnknownPair` (Kraken does not list
  the pair) and `NotKraken` (a URL that never answered as Kraken answers 404/410 or a body
  that is not Kraken's JSON: a wrong `kraken_rest_url`);
- one unreadable trade row never costs the page: the page keeps it in its place as a
  `BadRow`, so the caller knows how many rows Kraken served and where the broken one sits;
- an answer longer than `max_body` is not read past it (`limits.read_body`): a failed call,
  retried like the others. Every message built from what the server said (errors, statuses,
  rows) is escaped and bounded (`text.printable`), safe to log.

The client is synchronous and meant for one thread (the `PageFetcher`'s); only `abort` may be
called from another thread, to cut short an HTTP call in progress.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import orjson

from .backoff import Backoff
from .limits import DEFAULT_MAX_BODY, BodyTooBig, read_body
from .text import printable
from .trade import ExactFloat, InvalidTrade, Trade

__all__ = [
    "BadRow",
    "KrakenRest",
    "NotKraken",
    "RestError",
    "Rows",
    "Stopped",
    "TradesPage",
    "UnknownPair",
    "parse_trade_row",
    "parse_trades_result",
    "rest_row_to_trade",
    "v2_symbol",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLED_ERRORS = ("EGeneral:Too many requests", "EAPI:Rate limit exceeded")
UNKNOWN_PAIR_ERRORS = ("EQuery:Unknown asset pair",)
# Statuses that say "no such resource": from a URL that never answered as Kraken, a wrong
# `kraken_rest_url` (from Kraken itself, after it answered once, they are a passing fault).
NOT_FOUND_STATUSES = frozenset({404, 410})
# Kraken's REST names some assets the old way; WebSocket v2 uses the common codes.
ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
SIDES = {"b": "buy", "s": "sell"}
ORDER_TYPES = {"m": "market", "l": "limit"}
ROW_FIELDS = 7  # price, volume, time, side, order type, misc, trade_id
EXCERPT_CHARS = 200
POLL = 0.05  # seconds between two `should_continue` checks while waiting
# A decimal as Kraken writes prices, volumes and cursors: digits, maybe a fraction, no sign,
# no exponent (float() alone would also take "NaN", "inf", "1_000" and " 1e3 ").
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_UNSIGNED = re.compile(r"[0-9]+")
_MICROS = Decimal(1_000_000)


class RestError(RuntimeError):
    """A REST call failed.

    :param permanent: True when asking again cannot help (an unknown pair, a request Kraken
        rejects); False when the client gave up retrying something that may pass later.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(printable(message, 500))
        self.permanent = permanent


class NotKraken(RestError):
    """The URL does not serve Kraken's REST API (it never answered as Kraken): a wrong
    `kraken_rest_url`. Asking again cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class UnknownPair(RestError):
    """Kraken's `AssetPairs` (or `Trades`) does not know the pair: its history cannot be had."""

    def __init__(self, symbol: str, detail: str = "") -> None:
        message = f"Kraken's AssetPairs has no pair for {symbol}"
        super().__init__(f"{message} ({detail})" if detail else message, permanent=True)
        self.symbol = symbol


class Stopped(RuntimeError):
    """The caller asked to stop while a call was waiting, running or retrying."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A `Trades` row that could not be read, skipped from its page.

    :param trade_id: the row's trade_id when that field at least is readable, else None.
    :param reason: what is wrong with it.
    :param excerpt: the row as received, shortened for the log.
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
        reason = printable(str(exc) or type(exc).__name__)
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


# --- the client -------------------------------------------------------------------------


class KrakenRest:
    """A polite client of Kraken's public REST API.

    Counters, for metrics: `calls` (HTTP calls answered or failed), of which `calls_ok`,
    `calls_throttled` (HTTP 429 or Kraken's rate-limit errors) and `calls_failed` (anything
    else: transport errors, timeouts, other statuses, malformed answers, Kraken errors);
    `retries` (calls asked again) and `rows_bad` (trade rows skipped). A call cut short by
    `should_continue` or `abort` counts in none of them.

    :param base_url: `https://api.kraken.com` (or the simulator's URL).
    :param min_interval: seconds between two calls.
    :param timeout: seconds for one HTTP call.
    :param max_backoff: cap of the retry delay (and of a `Retry-After`), seconds.
    :param max_attempts: calls per request before giving up with a non-permanent
        `RestError` carrying what Kraken last said; None retries until `should_continue`
        says stop.
    :param should_continue: polled while waiting; when it returns False, `Stopped` is raised.
    :param max_body: most bytes of one answer; a longer one is a failed call.
    """

    def __init__(
        self,
        base_url: str = "https://api.kraken.com",
        *,
        min_interval: float = 1.0,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        max_attempts: int | None = None,
        should_continue: Callable[[], bool] = lambda: True,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None)")
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.should_continue = should_continue
        self.max_body = max_body
        self.calls = 0
        self.calls_ok = 0
        self.calls_throttled = 0
        self.calls_failed = 0
        self.retries = 0
        self.rows_bad = 0
        self.answered_as_kraken = False  # once true, a 404 or a non-JSON answer is a passing fault
        self._next_call = 0.0
        self._backoff = Backoff(initial=min(1.0, max_backoff), cap=max_backoff)
        self._pairs: dict[str, tuple[str, str]] | None = None  # v2 symbol -> (altname, key)
        self._client: httpx.Client | None = None
        self._sockets: list[socket.socket] = []  # of the client's connections, for `abort`
        self._sockets_lock = threading.Lock()

    # --- public calls -----------------------------------------------------------------

    def rest_pair(self, symbol: str) -> tuple[str, str]:
        """(altname for requests, result key) of a v2 symbol, from `AssetPairs` (cached).

        :raises UnknownPair: when `AssetPairs` does not list `symbol`.
        """
        if self._pairs is None:
            self._pairs = self._get("/0/public/AssetPairs", {}, _parse_asset_pairs)
        try:
            return self._pairs[symbol]
        except KeyError:
            raise UnknownPair(symbol) from None

    def trades(self, symbol: str, since_ns: int, count: int = 1000) -> TradesPage:
        """Trades of `symbol` after `since_ns`, oldest first, and the next cursor.

        :raises UnknownPair: Kraken does not know `symbol`.
        :raises RestError: Kraken refused the request, or `max_attempts` ran out.
        :raises Stopped: `should_continue` turned False.
        """
        altname, key = self.rest_pair(symbol)
        try:
            page = self._get(
                "/0/public/Trades",
                {"pair": altname, "since": str(since_ns), "count": str(count)},
                lambda result: parse_trades_result(symbol, key, result),
            )
        except _UnknownPairAnswer as exc:
            raise UnknownPair(symbol, f"Trades of {altname}: {exc}") from None
        self.rows_bad += len(page.bad_rows)
        return page

    def abort(self) -> None:
        """Cut short an HTTP call in progress (callable from any thread).

        Its socket is shut down, so a blocked read ends at once; the call then fails, and
        raises `Stopped` when `should_continue` is False, else is retried as a network error.
        """
        with self._sockets_lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        """Close the HTTP connections (the client reopens them if called again)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        with self._sockets_lock:
            self._sockets.clear()

    # --- plumbing ---------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str], parse: Callable[[Any], T]) -> T:
        """GET `path` until it answers (or `max_attempts` ran out), and `parse` its `result`.

        The delay a failure earns (backoff, `Retry-After`, throttling) holds for the next
        call even when this one gives up: it belongs to the client, not to the request.
        """
        attempt = 0
        while True:
            self._wait(self._next_call)
            self._next_call = time.monotonic() + self.min_interval
            attempt += 1
            try:
                value = self._attempt(path, params, parse)
            except _Retry as retry:
                if not self.should_continue():
                    raise Stopped("stopped during a Kraken REST call") from None
                self.calls += 1
                if retry.throttled:
                    self.calls_throttled += 1
                else:
                    self.calls_failed += 1
                if retry.retry_after is not None:
                    delay = min(retry.retry_after, self.max_backoff)
                else:
                    delay = self._backoff.next_delay()
                delay = max(delay, self.min_interval)
                self._next_call = time.monotonic() + delay
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    said = (
                        str(retry) if attempt == 1 else f"gave up after {attempt} attempts: {retry}"
                    )
                    raise RestError(said) from None
                self.retries += 1
                logger.warning("Kraken REST %s failed (%s); retrying in %.1f s", path, retry, delay)
            except RestError:
                self.calls += 1
                self.calls_failed += 1
                raise
            except Exception:
                if not self.should_continue():
                    raise Stopped("stopped during a Kraken REST call") from None
                self.calls += 1
                self.calls_failed += 1
                raise
            else:
                self.calls += 1
                self.calls_ok += 1
                self._backoff.reset()
                return value

    def _attempt(self, path: str, params: dict[str, str], parse: Callable[[Any], T]) -> T:
        """One HTTP call; `_Retry` for any failure that may pass, `NotKraken` or
        `_UnknownPairAnswer` for the two that cannot."""
        response, content = self._fetch(path, params)
        status = response.status_code
        if status in NOT_FOUND_STATUSES and not self.answered_as_kraken:
            raise self._not_kraken(path, f"HTTP {status} {response.reason_phrase}")
        if not 200 <= status < 300:
            raise _Retry(
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                throttled=status == 429,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            if not self.answered_as_kraken:
                raise self._not_kraken(path, "an answer that is not JSON") from None
            raise _Retry(f"answer is not JSON ({exc})") from None
        errors = body.get("error") if isinstance(body, dict) else None
        if not isinstance(errors, list):
            if not self.answered_as_kraken:
                raise self._not_kraken(path, "JSON without Kraken's `error` array")
            raise _Retry("answer is not Kraken's JSON (no `error` array)")
        self.answered_as_kraken = True
        if errors:
            message = "; ".join(map(str, errors))
            if any(str(e).startswith(UNKNOWN_PAIR_ERRORS) for e in errors):
                raise _UnknownPairAnswer(message)
            throttled = any(str(e).startswith(THROTTLED_ERRORS) for e in errors)
            raise _Retry(f"Kraken said {message}", throttled=throttled)
        if "result" not in body:
            raise _Retry("answer has no result")
        try:
            return parse(body["result"])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise _Retry(f"malformed answer: {exc}") from None

    def _fetch(self, path: str, params: dict[str, str]) -> tuple[httpx.Response, bytes]:
        """GET `path`: the response and, for a 2xx status, its body (at most `max_body`
        bytes; not read otherwise). `_Retry` for a transport failure or a body too long."""
        try:
            with self._http().stream(
                "GET", path, params=params, extensions={"trace": self._trace}
            ) as response:
                if not 200 <= response.status_code < 300:
                    return response, b""
                return response, read_body(response, self.max_body)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timeout ({type(exc).__name__})") from None
        except httpx.RequestError as exc:  # connection refused or reset, bad encoding...
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        except BodyTooBig as exc:
            raise _Retry(f"answer too long: {exc} (max_rest_body_mb)") from None

    def _not_kraken(self, path: str, what: str) -> NotKraken:
        return NotKraken(
            f"{self.base_url}{path} answered {what}: not Kraken's REST API (check kraken_rest_url)"
        )

    def _wait(self, until: float) -> None:
        while (remaining := until - time.monotonic()) > 0:
            if not self.should_continue():
                raise Stopped("stopped while waiting for Kraken REST")
            time.sleep(min(remaining, POLL))
        if not self.should_continue():
            raise Stopped("stopped while waiting for Kraken REST")

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self._client

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keep each new connection's socket, so `abort` can end it."""
        if not event.endswith(("connect_tcp.complete", "start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._sockets_lock:
            self._sockets = [s for s in self._sockets if s.fileno() != -1]
            self._sockets.append(sock)
        if not self.should_continue():  # `abort` came before the socket was known
            _shutdown(sock)


def _parse_asset_pairs(result: Any) -> dict[str, tuple[str, str]]:
    """`AssetPairs`' result -> v2 symbol -> (altname, result key)."""
    if not isinstance(result, dict):
        raise ValueError(f"AssetPairs result is {type(result).__name__}, not an object")
    pairs = {}
    for key, info in result.items():
        wsname = info.get("wsname") if isinstance(info, dict) else None
        if isinstance(wsname, str) and "/" in wsname:
            altname = info.get("altname")
            pairs[v2_symbol(wsname)] = (altname if isinstance(altname, str) else key, key)
    return pairs


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (an HTTP date is not honoured: the backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _UnknownPairAnswer(RestError):
    """Kraken answered `EQuery:Unknown asset pair` (the caller knows which pair)."""


class _Retry(Exception):
    """An answer worth asking again.

    :param throttled: Kraken or its edge said "too many requests".
    :param retry_after: seconds the server asked to wait, if it said.
    """

    def __init__(
        self, message: str, *, throttled: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(printable(message, 300))
        self.throttled = throttled
        self.retry_after = retry_after
