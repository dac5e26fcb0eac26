"""Kraken's public REST market data, as the simulator serves it: `AssetPairs` and `Trades`."""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qs, urlsplit

import orjson

from .market import Market, SimTrade, pair_info

__all__ = ["RestApi"]

logger = logging.getLogger(__name__)

MAX_COUNT = 1000


class RestApi:
    """Answers `GET /0/public/AssetPairs` and `GET /0/public/Trades` in Kraken's formats.

    Errors come as HTTP 200 with a non-empty `error` array, as Kraken sends them.
    """

    def __init__(self, market: Market) -> None:
        self.market = market
        self.calls: list[str] = []
        self._throttled = 0
        self._http_status: tuple[int, int, float | None] | None = None  # status, n, retry_after
        self._corrupt: dict[tuple[str, int], list | None] = {}
        self._withheld: dict[str, list[tuple[int, int]]] = {}
        self._names: dict[str, str] | None = None
        self._lock = threading.Lock()

    def throttle(self, n: int) -> None:
        """The next `n` calls answer `EGeneral:Too many requests`."""
        with self._lock:
            self._throttled = n

    def http_status(self, status: int, n: int, retry_after: float | None = None) -> None:
        """The next `n` calls answer HTTP `status` (e.g. 429, 503), with a `Retry-After`
        header of `retry_after` seconds when given, and a plain-text body, as an edge does."""
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        with self._lock:
            self._http_status = (status, n, retry_after) if n > 0 else None

    def corrupt_row(self, symbol: str, trade_id: int, row: list | None = None) -> None:
        """`Trades` answers that include trade `trade_id` of `symbol` carry `row` in its
        place; by default the trade's own row with a non-numeric price."""
        with self._lock:
            self._corrupt[(symbol, trade_id)] = None if row is None else list(row)

    def withhold(self, symbol: str, first_id: int, last_id: int) -> None:
        """`Trades` answers leave out trades `first_id..last_id` of `symbol`, as if Kraken's
        history lacked them (the cursor `last` is unchanged)."""
        with self._lock:
            self._withheld.setdefault(symbol, []).append((first_id, last_id))

    def handle(self, target: str) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for a request target such as `/0/public/Trades?pair=...`."""
        status, _headers, body = self.respond(target)
        return status, body

    def respond(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """(HTTP status, extra headers, body) for a request target."""
        self.calls.append(target)
        logger.debug("REST %s", target)
        with self._lock:
            if self._http_status is not None:
                status, n, retry_after = self._http_status
                self._http_status = (status, n - 1, retry_after) if n > 1 else None
                logger.info("REST %s answered HTTP %d", target, status)
                headers = {"Content-Type": "text/plain"}
                if retry_after is not None:
                    headers["Retry-After"] = format(retry_after, "g")
                return status, headers, f"HTTP {status}\n".encode()
        status, body = self._answer(target)
        return status, {}, body

    def _answer(self, target: str) -> tuple[int, bytes]:
        with self._lock:
            if self._throttled > 0:
                self._throttled -= 1
                logger.info("REST %s throttled", target)
                return 200, _error("EGeneral:Too many requests")
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/0/public/AssetPairs":
            return 200, self._asset_pairs(query)
        if url.path == "/0/public/Trades":
            return 200, self._trades(query)
        return 404, _error("EGeneral:Unknown method")

    def _by_rest_name(self) -> dict[str, str]:
        """REST name (altname or result key) -> v2 symbol; built once (the pairs are fixed)."""
        names = self._names
        if names is None:
            names = {}
            for symbol in self.market.pairs:
                info = pair_info(symbol)
                names[info.altname] = symbol
                names[info.key] = symbol
            self._names = names
        return names

    def _asset_pairs(self, query: dict[str, str]) -> bytes:
        wanted = set(query["pair"].split(",")) if "pair" in query else None
        result = {}
        for symbol in self.market.pairs:
            info = pair_info(symbol)
            if wanted and not wanted & {info.altname, info.key}:
                continue
            result[info.key] = {
                "altname": info.altname,
                "wsname": info.wsname,
                "aclass_base": "currency",
                "base": info.base,
                "aclass_quote": "currency",
                "quote": info.quote,
                "pair_decimals": 5,
                "lot_decimals": 8,
                "status": self.market.status(symbol),
            }
        if wanted and not result:
            return _error("EQuery:Unknown asset pair")
        return orjson.dumps({"error": [], "result": result})

    def _trades(self, query: dict[str, str]) -> bytes:
        symbol = self._by_rest_name().get(query.get("pair", ""))
        if symbol is None:
            return _error("EQuery:Unknown asset pair")
        try:
            since = int(query["since"]) if "since" in query else None
            count = min(int(query.get("count", MAX_COUNT)), MAX_COUNT)
        except ValueError:
            return _error("EGeneral:Invalid arguments")
        trades = self.market.trades_since(symbol, since, count)
        last = str(trades[-1].time_ns) if trades else str(since or 0)
        with self._lock:
            corrupt = dict(self._corrupt)
            withheld = list(self._withheld.get(symbol, ()))
        if withheld:
            trades = [t for t in trades if not any(a <= t.trade_id <= b for a, b in withheld)]
        rows = [t.to_rest_row() for t in trades]
        if corrupt:
            rows = [
                _corrupted(t, corrupt) if (t.symbol, t.trade_id) in corrupt else row
                for t, row in zip(trades, rows, strict=True)
            ]
        return orjson.dumps({"error": [], "result": {pair_info(symbol).key: rows, "last": last}})


def _corrupted(trade: SimTrade, corrupt: dict[tuple[str, int], list | None]) -> list:
    """The broken row standing for `trade`: the one given, else a non-numeric price."""
    row = corrupt[(trade.symbol, trade.trade_id)]
    if row is not None:
        return row
    return ["not-a-price", *trade.to_rest_row()[1:]]


def _error(message: str) -> bytes:
    return orjson.dumps({"error": [message]})
