"""Kraken's public REST market data, as the simulator serves it: `AssetPairs` and `Trades`."""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qs, urlsplit

import orjson

from .market import Market, pair_info

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
        self._lock = threading.Lock()

    def throttle(self, n: int) -> None:
        """The next `n` calls answer `EGeneral:Too many requests`."""
        with self._lock:
            self._throttled = n

    def handle(self, target: str) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for a request target such as `/0/public/Trades?pair=...`."""
        self.calls.append(target)
        logger.debug("REST %s", target)
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
        names = {}
        for symbol in self.market.pairs:
            info = pair_info(symbol)
            names[info.altname] = symbol
            names[info.key] = symbol
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
                "status": "online",
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
        rows = [t.to_rest_row() for t in trades]
        return orjson.dumps({"error": [], "result": {pair_info(symbol).key: rows, "last": last}})


def _error(message: str) -> bytes:
    return orjson.dumps({"error": [message]})
