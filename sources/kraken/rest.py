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
- one unreadable trade row never costs the page (`rows.parse_trades_result`);
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
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import orjson

from .backoff import Backoff
from .config import KRAKEN_REST_URL
from .limits import DEFAULT_MAX_BODY, BodyTooBig, read_body
from .rows import TradesPage, parse_trades_result, v2_symbol
from .text import printable

__all__ = ["KrakenRest", "NotKraken", "RestError", "Stopped", "UnknownPair"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLED_ERRORS = ("EGeneral:Too many requests", "EAPI:Rate limit exceeded")
UNKNOWN_PAIR_ERRORS = ("EQuery:Unknown asset pair",)
# Statuses that say "no such resource": from a URL that never answered as Kraken, a wrong
# `kraken_rest_url` (from Kraken itself, after it answered once, they are a passing fault).
NOT_FOUND_STATUSES = frozenset({404, 410})
POLL = 0.05  # seconds between two `should_continue` checks while waiting


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
        base_url: str = KRAKEN_REST_URL,
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
