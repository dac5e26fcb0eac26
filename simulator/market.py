"""A deterministic market: one trade history per pair, shared by the WebSocket and REST sides."""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = ["TRADING_STATUSES", "Market", "PairInfo", "SimTrade", "generated_pairs", "pair_info"]

Side = Literal["buy", "sell"]
OrdType = Literal["market", "limit"]


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One trade of the simulated market."""

    symbol: str
    side: Side
    price: float
    qty: float
    ord_type: OrdType
    trade_id: int
    time_ns: int

    def timestamp(self) -> str:
        """RFC 3339 UTC with microseconds, as Kraken v2 writes it."""
        micros = self.time_ns // 1000
        moment = datetime.fromtimestamp(micros // 1_000_000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros % 1_000_000:06d}Z"

    def to_ws(self) -> dict:
        """The trade object of a v2 `trade` message."""
        return {
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "ord_type": self.ord_type,
            "trade_id": self.trade_id,
            "timestamp": self.timestamp(),
        }

    def to_rest_row(self) -> list:
        """A row of the REST `Trades` answer."""
        micros = self.time_ns // 1000
        return [
            f"{self.price:.5f}",
            f"{self.qty:.8f}",
            micros / 1_000_000,
            self.side[0],
            self.ord_type[0],
            "",
            self.trade_id,
        ]


@dataclass(frozen=True, slots=True)
class PairInfo:
    """How Kraken's REST API names a pair."""

    key: str  # result key, e.g. XXBTZUSD
    altname: str  # request name, e.g. XBTUSD
    wsname: str  # AssetPairs' wsname, e.g. XBT/USD (older naming than WS v2's BTC/USD)
    base: str
    quote: str


_KNOWN = {
    "BTC/USD": PairInfo("XXBTZUSD", "XBTUSD", "XBT/USD", "XXBT", "ZUSD"),
    "ETH/USD": PairInfo("XETHZUSD", "ETHUSD", "ETH/USD", "XETH", "ZUSD"),
    "SOL/USD": PairInfo("SOLUSD", "SOLUSD", "SOL/USD", "SOL", "ZUSD"),
    "DOGE/USD": PairInfo("XDGUSD", "XDGUSD", "XDG/USD", "XXDG", "ZUSD"),
    "ETH/EUR": PairInfo("XETHZEUR", "ETHEUR", "ETH/EUR", "XETH", "ZEUR"),
}
_START_PRICES = {"BTC": 65000.0, "ETH": 3200.0, "SOL": 150.0, "DOGE": 0.12}
# Statuses of Kraken's instrument list in which orders still match (trades happen); in the
# others (maintenance, cancel_only, post_only, delisted, work_in_progress) nothing trades.
TRADING_STATUSES = frozenset({"online", "limit_only", "reduce_only"})


def generated_pairs(count: int, quote: str = "USD", prefix: str = "C") -> tuple[str, ...]:
    """`count` made-up v2 symbols: `C000/USD`, `C001/USD`, ... (for many-pair tests)."""
    width = max(3, len(str(count - 1)))
    return tuple(f"{prefix}{i:0{width}d}/{quote}" for i in range(count))


def pair_info(symbol: str) -> PairInfo:
    """Kraken's REST names of a v2 symbol."""
    if symbol in _KNOWN:
        return _KNOWN[symbol]
    base, _, quote = symbol.partition("/")
    return PairInfo(f"{base}{quote}", f"{base}{quote}", symbol, base, quote)


class Market:
    """Trades of several pairs; trade_id rises by one per trade within a pair.

    :param pairs: v2 symbols traded.
    :param seed: makes prices, sizes and sides reproducible.
    :param first_trade_id: the id of each pair's first trade.
    :param statuses: pair -> status in Kraken's instrument list (default `online`); only pairs
        whose status lets orders match (`TRADING_STATUSES`) make new trades.
    """

    def __init__(
        self,
        pairs: Iterable[str],
        *,
        seed: int = 0,
        first_trade_id: int = 1000,
        statuses: Mapping[str, str] | None = None,
    ) -> None:
        self._pairs = tuple(pairs)
        self._statuses = {p: "online" for p in self._pairs}
        self._statuses.update(statuses or {})
        self._trading = self._trading_pairs()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._history: dict[str, list[SimTrade]] = {p: [] for p in self._pairs}
        self._times: dict[str, list[int]] = {p: [] for p in self._pairs}
        self._next_id = dict.fromkeys(self._pairs, first_trade_id)
        self._price = {p: _START_PRICES.get(p.split("/")[0], 100.0) for p in self._pairs}
        self._turn = 0

    @property
    def pairs(self) -> tuple[str, ...]:
        """The v2 symbols this market lists (and trades, when their status allows)."""
        return self._pairs

    def status(self, pair: str) -> str:
        """The pair's status in Kraken's instrument list (`online`, `maintenance`...)."""
        return self._statuses[pair]

    def set_status(self, pair: str, status: str) -> None:
        """Change a listed pair's status; it trades only in `TRADING_STATUSES`."""
        if pair not in self._statuses:
            raise KeyError(pair)
        with self._lock:
            self._statuses[pair] = status
            self._trading = self._trading_pairs()

    def _trading_pairs(self) -> tuple[str, ...]:
        return tuple(p for p in self._pairs if self._statuses[p] in TRADING_STATUSES)

    def _make(self, pair: str, time_ns: int) -> SimTrade:
        price = self._price[pair] * (1 + self._rng.gauss(0, 0.0005))
        self._price[pair] = price
        times = self._times[pair]
        # Strictly rising by at least 1 ns within a pair: trades of one tick still share their
        # microsecond timestamp, and a REST `since` cursor never splits a group of equal times.
        time_ns = max(time_ns, times[-1] + 1) if times else time_ns
        trade = SimTrade(
            symbol=pair,
            side=self._rng.choice(("buy", "sell")),
            price=round(price, 5),
            qty=round(self._rng.uniform(0.0001, 2.0), 8),
            ord_type=self._rng.choice(("market", "limit")),
            trade_id=self._next_id[pair],
            time_ns=time_ns,
        )
        self._next_id[pair] += 1
        self._history[pair].append(trade)
        times.append(time_ns)
        return trade

    def seed_history(
        self, count_per_pair: int, span_seconds: float, end_ns: int | None = None
    ) -> None:
        """Trades in the past: `count_per_pair` per pair, evenly over `span_seconds` to `end_ns`."""
        end_ns = time.time_ns() if end_ns is None else end_ns
        start_ns = end_ns - int(span_seconds * 1e9)
        step = (end_ns - start_ns) // max(count_per_pair, 1)
        with self._lock:
            for i in range(count_per_pair):
                for pair in self._pairs:
                    self._make(pair, start_ns + (i + 1) * step)  # the last at end_ns

    def next_trades(self, n: int) -> list[SimTrade]:
        """`n` new trades stamped now, round-robin over the pairs that trade."""
        now = time.time_ns()
        with self._lock:
            trades = []
            pairs = self._trading
            if not pairs:
                return trades
            for _ in range(n):
                pair = pairs[self._turn % len(pairs)]
                self._turn += 1
                trades.append(self._make(pair, now))
            return trades

    def history(self, pair: str) -> list[SimTrade]:
        """Every trade of `pair` so far, oldest first (a copy)."""
        with self._lock:
            return list(self._history[pair])

    def last(self, pair: str, n: int = 50) -> list[SimTrade]:
        """The latest `n` trades of `pair`, oldest first."""
        if n <= 0:
            return []
        with self._lock:
            return self._history[pair][-n:]

    def trades_since(self, pair: str, since_ns: int | None, count: int) -> list[SimTrade]:
        """Trades with time > since_ns, oldest first; the latest `count` when since is None."""
        if count <= 0:
            return []
        with self._lock:
            history = self._history[pair]
            if since_ns is None:
                return history[-count:]
            start = bisect_right(self._times[pair], since_ns)
            return history[start : start + count]
