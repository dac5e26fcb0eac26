"""Kraken's public REST market data (`AssetPairs`, `Trades`), with Kraken's etiquette.

- at most one call per `min_interval` seconds (Kraken's public limit is about 1/s);
- throttling arrives as HTTP 200 with `{"error": ["EGeneral:Too many requests"]}`, so the
  `error` array of every answer is read; throttling, timeouts and 5xx are retried with
  exponential backoff; other errors (an unknown pair) raise `RestError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from .backoff import Backoff
from .trade import InvalidTrade, Trade

__all__ = ["KrakenRest", "RestError", "TradesPage", "rest_row_to_trade", "v2_symbol"]

logger = logging.getLogger(__name__)

RETRYABLE_ERRORS = ("EGeneral:Too many requests", "EAPI:Rate limit exceeded", "EService:")
# Kraken's REST names some assets the old way; WebSocket v2 uses the common codes.
ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
SIDES = {"b": "buy", "s": "sell"}
ORDER_TYPES = {"m": "market", "l": "limit"}


class RestError(RuntimeError):
    """Kraken answered with an error that retrying will not fix."""


class Stopped(RuntimeError):
    """The caller asked to stop while a call was waiting or retrying."""


@dataclass(frozen=True, slots=True)
class TradesPage:
    """One page of `Trades`: rows in trade order and the cursor for the next page."""

    trades: list[Trade]
    last_ns: int


def v2_symbol(wsname: str) -> str:
    """AssetPairs' `wsname` (`XBT/USD`) -> the WebSocket v2 symbol (`BTC/USD`)."""
    base, _, quote = wsname.partition("/")
    return f"{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"


def rest_row_to_trade(symbol: str, row: list[Any]) -> Trade:
    """`["65000.1","0.01",1695628177.708706,"s","m","",4665906]` -> `Trade` of `symbol`."""
    try:
        price, volume, seconds, side, order_type, _misc, trade_id = row[:7]
        micros = round(float(seconds) * 1_000_000)
        stamp = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(
            microsecond=micros % 1_000_000
        )
        return Trade.from_kraken(
            {
                "symbol": symbol,
                "side": SIDES.get(side, side),
                "price": float(price),
                "qty": float(volume),
                "ord_type": ORDER_TYPES.get(order_type, order_type),
                "trade_id": trade_id,
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        )
    except (TypeError, ValueError) as exc:
        raise InvalidTrade(f"REST row {row!r}: {exc}") from None


class KrakenRest:
    """A polite client of Kraken's public REST API.

    :param base_url: `https://api.kraken.com` (or the simulator's URL).
    :param min_interval: seconds between two calls.
    :param timeout: seconds for one HTTP call.
    :param max_backoff: cap of the retry delay, seconds.
    :param should_continue: polled while waiting; when it returns False, `Stopped` is raised.
    """

    def __init__(
        self,
        base_url: str = "https://api.kraken.com",
        *,
        min_interval: float = 1.0,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        should_continue: Callable[[], bool] = lambda: True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.should_continue = should_continue
        self.calls = 0
        self.retries = 0
        self._next_call = 0.0
        self._pairs: dict[str, tuple[str, str]] | None = None  # v2 symbol -> (altname, key)
        self._client: httpx.Client | None = None

    # --- public calls -----------------------------------------------------------------

    def rest_pair(self, symbol: str) -> tuple[str, str]:
        """(altname for requests, result key) of a v2 symbol, from `AssetPairs` (cached)."""
        if self._pairs is None:
            result = self._get("/0/public/AssetPairs", {})
            pairs = {}
            for key, info in result.items():
                wsname = info.get("wsname") if isinstance(info, dict) else None
                if wsname:
                    pairs[v2_symbol(wsname)] = (info.get("altname", key), key)
            self._pairs = pairs
        try:
            return self._pairs[symbol]
        except KeyError:
            raise RestError(f"Kraken's AssetPairs has no pair for {symbol}") from None

    def trades(self, symbol: str, since_ns: int, count: int = 1000) -> TradesPage:
        """Trades of `symbol` after `since_ns`, oldest first, and the next cursor."""
        altname, key = self.rest_pair(symbol)
        result = self._get(
            "/0/public/Trades", {"pair": altname, "since": str(since_ns), "count": str(count)}
        )
        rows = result.get(key)
        if rows is None:  # the key may be either name
            rows = next((v for k, v in result.items() if k != "last"), [])
        trades = [rest_row_to_trade(symbol, row) for row in rows]
        last = int(result.get("last", since_ns))
        return TradesPage(trades, last)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- plumbing ---------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        backoff = Backoff(initial=min(1.0, self.max_backoff), cap=self.max_backoff)
        while True:
            self._wait(self._next_call)
            self._next_call = time.monotonic() + self.min_interval
            self.calls += 1
            try:
                response = self._http().get(path, params=params)
                if response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code}")
                response.raise_for_status()
                body = response.json()
                errors = body.get("error") or []
                if errors:
                    message = "; ".join(map(str, errors))
                    if any(str(e).startswith(RETRYABLE_ERRORS) for e in errors):
                        raise _Retry(message)
                    raise RestError(f"{path} {params}: {message}")
                return body["result"]
            except (_Retry, httpx.TransportError, ValueError, KeyError) as exc:
                self.retries += 1
                delay = max(backoff.next_delay(), self.min_interval)
                logger.warning("Kraken REST %s failed (%s); retrying in %.1f s", path, exc, delay)
                self._next_call = time.monotonic() + delay
            except httpx.HTTPStatusError as exc:
                raise RestError(f"{path}: {exc}") from None

    def _wait(self, until: float) -> None:
        while (remaining := until - time.monotonic()) > 0:
            if not self.should_continue():
                raise Stopped("stopped while waiting for Kraken REST")
            time.sleep(min(remaining, 0.2))
        if not self.should_continue():
            raise Stopped("stopped while waiting for Kraken REST")

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self._client


class _Retry(Exception):
    """An answer worth asking again."""
