"""Kraken's public REST API within its budget: one call per `interval`, throttling honoured.

Kraken allows about one public call a second per address and says "too many" as HTTP 200 with
`{"error": ["EGeneral:Too many requests"]}` (its edge also sends HTTP 429). Such an answer, a
5xx, a timeout or a dropped connection is asked again after a backoff that doubles (from twice
the interval, at most `max_backoff`, or the `Retry-After` the server gave); after `attempts`
failures in a row the call raises `RestUnavailable`. Any other Kraken error raises
`KrakenError` at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from .rest_rows import KrakenError, TradesAnswer, read_asset_pairs, read_trades

__all__ = ["KrakenRest", "RestUnavailable"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
PAGE = 1000  # most rows Kraken gives per Trades call


class RestUnavailable(RuntimeError):
    """Kraken's REST API did not answer usably after every attempt."""


class KrakenRest:
    """A polite client of Kraken's public `AssetPairs` and `Trades`.

    :param base_url: `https://api.kraken.com`, or the simulator's.
    :param interval: seconds between two calls (Kraken: about one a second).
    :param attempts: calls per request before `RestUnavailable`.
    :param max_backoff: longest wait after a failure, seconds.
    :param sleep: `time.sleep`, or a fake clock's in tests; `clock` likewise.
    :ivar calls: calls made; `throttled`: of them answered "too many requests" (or 429).
    """

    def __init__(
        self,
        base_url: str,
        *,
        interval: float = 1.0,
        timeout: float = 15.0,
        attempts: int = 6,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.attempts = attempts
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._next = 0.0
        self._names: dict[str, str] | None = None
        self.calls = 0
        self.throttled = 0

    def rest_name(self, symbol: str) -> str | None:
        """The `Trades` name of a v2 symbol (from `AssetPairs`, asked once); None if Kraken
        does not list it."""
        if self._names is None:
            self._names = self._get("/0/public/AssetPairs", {}, read_asset_pairs)
        return self._names.get(symbol.upper())

    def trades(self, name: str, since_ns: int) -> TradesAnswer:
        """Up to 1,000 trades of `name` with a time after `since_ns` (exclusive), oldest first."""
        params = {"pair": name, "since": str(since_ns), "count": str(PAGE)}
        return self._get("/0/public/Trades", params, read_trades)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, str], read: Callable[[bytes], T]) -> T:
        delay = 2 * self.interval
        for attempt in range(1, self.attempts + 1):
            wait = self._next - self._clock()
            if wait > 0:
                self._sleep(wait)
            self._next = self._clock() + self.interval
            self.calls += 1
            try:
                response = self._http.get(path, params=params)
                retry_after = _retry_after(response)
                if response.status_code == 429 or response.status_code >= 500:
                    self.throttled += response.status_code == 429
                    raise _Again(f"HTTP {response.status_code}", retry_after)
                if response.status_code != 200:
                    raise KrakenError([f"HTTP {response.status_code}: {response.text[:200]}"])
                return read(response.content)
            except KrakenError as exc:
                if not exc.throttled:
                    raise
                self.throttled += 1
                problem, retry_after = str(exc), None
            except _Again as exc:
                problem, retry_after = str(exc), exc.retry_after
            except httpx.HTTPError as exc:
                problem, retry_after = f"{type(exc).__name__}: {exc}", None
            if attempt == self.attempts:
                raise RestUnavailable(f"{path} {params}: {problem} ({attempt} attempts)")
            wait = min(self.max_backoff, retry_after if retry_after is not None else delay)
            logger.warning("Kraken REST %s: %s; asking again in %.1f s", path, problem, wait)
            self._next = self._clock() + max(wait, self.interval)
            delay = min(self.max_backoff, delay * 2)
        raise AssertionError("unreachable")


class _Again(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
