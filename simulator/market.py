"""A deterministic market: one trade history per pair, shared by the WebSocket and REST sides."""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
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

    Times rise within a pair, by at least 1 ns from one taker order to the next. On Kraken the
    fills of one taker order (one trade per maker order it meets) share one timestamp; with
    `fills` above 1 every run of that many consecutive trades of a pair shares its exact
    `time_ns`, so a REST page can end inside a run (see `share_time`, `run_across_page`).

    :param pairs: v2 symbols traded.
    :param seed: makes prices, sizes and sides reproducible.
    :param first_trade_id: the id of each pair's first trade.
    :param statuses: pair -> status in Kraken's instrument list (default `online`); only pairs
        whose status lets orders match (`TRADING_STATUSES`) make new trades.
    :param fills: trades per taker order: runs of this many consecutive trades of a pair share
        one time, in `seed_history` and in live trades (1: every trade has its own time).
    """

    def __init__(
        self,
        pairs: Iterable[str],
        *,
        seed: int = 0,
        first_trade_id: int = 1000,
        statuses: Mapping[str, str] | None = None,
        fills: int = 1,
    ) -> None:
        if fills < 1:
            raise ValueError(f"fills must be at least 1, not {fills}")
        self._pairs = tuple(pairs)
        self._statuses = {p: "online" for p in self._pairs}
        self._statuses.update(statuses or {})
        self._trading = self._trading_pairs()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._history: dict[str, list[SimTrade]] = {p: [] for p in self._pairs}
        self._times: dict[str, list[int]] = {p: [] for p in self._pairs}
        self._next_id = dict.fromkeys(self._pairs, first_trade_id)
        self._fills = fills
        self._run_left = dict.fromkeys(self._pairs, 0)  # trades left in the current order
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
            self._run_left = dict.fromkeys(self._pairs, 0)  # the round robin starts anew

    def _trading_pairs(self) -> tuple[str, ...]:
        return tuple(p for p in self._pairs if self._statuses[p] in TRADING_STATUSES)

    def _make(self, pair: str, time_ns: int) -> SimTrade:
        price = self._price[pair] * (1 + self._rng.gauss(0, 0.0005))
        self._price[pair] = price
        times = self._times[pair]
        if self._run_left[pair] > 0:  # a later fill of the same taker order: the same time
            self._run_left[pair] -= 1
            time_ns = times[-1]
        else:
            # A new order: at least 1 ns after the last one, so that with `fills=1` trades of
            # one tick still share their microsecond timestamp but a `since` cursor never
            # splits a group of equal times.
            self._run_left[pair] = self._fills - 1
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
        """Trades in the past: `count_per_pair` per pair, evenly over `span_seconds` to `end_ns`
        (with `fills`, each run at the time of its first trade; live trades start a new run)."""
        end_ns = time.time_ns() if end_ns is None else end_ns
        start_ns = end_ns - int(span_seconds * 1e9)
        step = (end_ns - start_ns) // max(count_per_pair, 1)
        with self._lock:
            for i in range(count_per_pair):
                for pair in self._pairs:
                    self._make(pair, start_ns + (i + 1) * step)  # the last at end_ns
            self._run_left = dict.fromkeys(self._pairs, 0)

    def next_trades(self, n: int) -> list[SimTrade]:
        """`n` new trades stamped now, round-robin over the pairs that trade: one taker order
        of `fills` trades per turn, the last one whole (up to `fills - 1` more than `n`), as
        Kraken sends an order's fills together."""
        now = time.time_ns()
        with self._lock:
            trades: list[SimTrade] = []
            pairs = self._trading
            if not pairs:
                return trades
            while len(trades) < n or (trades and self._run_left[trades[-1].symbol]):
                pair = pairs[self._turn % len(pairs)]
                trades.append(self._make(pair, now))
                if not self._run_left[pair]:
                    self._turn += 1
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

    def trades_since(
        self, pair: str, since_ns: int | None, count: int, until_ns: int | None = None
    ) -> list[SimTrade]:
        """The first `count` trades with since_ns < time <= until_ns, oldest first; the latest
        `count` up to until_ns when since is None (`until_ns` None: no upper bound)."""
        if count <= 0:
            return []
        with self._lock:
            history, times = self._history[pair], self._times[pair]
            end = len(history) if until_ns is None else bisect_right(times, until_ns)
            if since_ns is None:
                return history[max(0, end - count) : end]
            start = bisect_right(times, since_ns)
            return history[start : min(start + count, end)]

    def share_time(self, pair: str, first_id: int, last_id: int) -> int:
        """Trades `first_id..last_id` of `pair` take the time of `first_id`, as the fills of
        one taker order do; returns that time. Call it before the simulator serves them (the
        WebSocket would have sent the old times). A REST page ending inside the run leaves
        the rest of it behind `since` = its time, since `Trades` serves time > since."""
        with self._lock:
            history, times = self._history[pair], self._times[pair]
            first = first_id - history[0].trade_id if history else -1  # ids rise by one
            last = first + last_id - first_id
            if first < 0 or last < first or last >= len(history):
                raise ValueError(f"{pair} has no trades {first_id}..{last_id}")
            shared = times[first]
            for i in range(first + 1, last + 1):
                history[i] = replace(history[i], time_ns=shared)
                times[i] = shared
            return shared

    def run_across_page(
        self,
        pair: str,
        since_ns: int = 0,
        *,
        page: int = 1000,
        boundary: int = 1,
        before: int = 2,
        after: int = 3,
    ) -> range:
        """Make a run of trades sharing one time straddle a `Trades` page boundary: for a
        client walking pages of `page` rows from `since_ns` (each next `since` being the
        previous answer's `last`), the last `before` rows of page `boundary` and the first
        `after` trades after it share the time of the first of them. That page's `last` is
        then their time, and `since=last` skips the `after` trades: the trap a client must
        survive by re-reading from before the boundary row's time. Returns the run's ids.
        """
        if not (0 < before <= page and after > 0 and boundary > 0):
            raise ValueError("need 0 < before <= page, after > 0 and boundary > 0")
        with self._lock:
            times = self._times[pair]
            end, since = -1, since_ns
            for _ in range(boundary):  # the index of page `boundary`'s last row
                end = bisect_right(times, since) + page - 1
                if end + after >= len(times):
                    raise ValueError(f"{pair} has too few trades after {since_ns} for that")
                since = times[end]
            first_id = self._history[pair][end - before + 1].trade_id
        self.share_time(pair, first_id, first_id + before + after - 1)
        return range(first_id, first_id + before + after)
