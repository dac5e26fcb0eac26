"""A harness for the sans-I/O core: trades, a Kraken REST over a known history that can
misbehave the ways the real one does, and a driver with a fake clock."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable

from sources.kraken.feed import (
    BackfillEnded,
    CancelFetch,
    Feed,
    FeedConfig,
    Fetch,
    Hole,
    Notice,
    Publish,
    RestFailure,
    Resubscribe,
)
from sources.kraken.rows import BadRow
from sources.kraken.trade import Trade

PAIRS = ("BTC/USD", "ETH/USD")
BASE_MS = 1_700_000_000_000
NS_PER_MS = 1_000_000


def trade(trade_id: int, pair: str = "BTC/USD", ms: int | None = None) -> Trade:
    """A trade whose time rises with its id (one per 10 ms), like Kraken's."""
    ms = BASE_MS + trade_id * 10 if ms is None else ms
    stamp = f"2023-11-14T22:13:{(ms // 1000) % 60:02d}.{ms % 1000:03d}000Z"
    return Trade(pair, "buy", 100.0, 1.0, "limit", trade_id, stamp, ms)


def trades(ids: Iterable[int], pair: str = "BTC/USD") -> list[Trade]:
    return [trade(i, pair) for i in ids]


def shared_times(ids: Iterable[int], pair: str = "BTC/USD", run: int = 7) -> list[Trade]:
    """Trades whose ids come in runs of `run` sharing one time (one taker order's fills)."""
    return [trade(i, pair, BASE_MS + (i // run) * 10) for i in ids]


def assert_contiguous(ids: list[int]) -> None:
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids[:50]


class FakeRest:
    """Kraken REST `Trades` over a known history: `since` is an exclusive time in ns (trades
    sharing a time stay behind a cursor equal to it), pages of up to `count` rows.

    Misbehaviour, as Kraken's REST shows it:
    - `missing`: (pair, trade_id) rows it does not serve at all (its history lacks them);
    - `broken`: (pair, trade_id) -> how many more answers serve that row broken (None:
      always); a broken row keeps its trade_id, unless it is in `anonymous` too;
    - `served_up_to`: pair -> the last trade_id it serves yet (it lags the socket).
    """

    def __init__(self, history: dict[str, list[Trade]]) -> None:
        self.history = history
        self.missing: set[tuple[str, int]] = set()
        self.broken: dict[tuple[str, int], int | None] = {}
        self.anonymous: set[tuple[str, int]] = set()
        self.served_up_to: dict[str, int] = {}
        self.calls: list[Fetch] = []
        self._keys: dict[int, list[int]] = {}

    def answer(self, fetch: Fetch) -> tuple[list[Trade | BadRow], int]:
        self.calls.append(fetch)
        history = self.history[fetch.pair]
        keys = self._keys.get(id(history))
        if keys is None or len(keys) != len(history):
            keys = self._keys[id(history)] = [t.timestamp_ms * NS_PER_MS for t in history]
        start = bisect_right(keys, fetch.since_ns)
        up_to = self.served_up_to.get(fetch.pair)
        rows: list[Trade | BadRow] = []
        for t in history[start:]:
            if len(rows) >= fetch.count or (up_to is not None and t.trade_id > up_to):
                break
            if (t.symbol, t.trade_id) in self.missing:
                continue
            rows.append(self._row(t))
        last_row = next((r for r in reversed(rows) if type(r) is Trade), None)
        last = last_row.timestamp_ms * NS_PER_MS if last_row else fetch.since_ns
        return rows, last

    def _row(self, t: Trade) -> Trade | BadRow:
        key = (t.symbol, t.trade_id)
        if key not in self.broken:
            return t
        left = self.broken[key]
        if left is not None:
            if left <= 0:
                return t
            self.broken[key] = left - 1
        tid = None if key in self.anonymous else t.trade_id
        return BadRow(tid, "price 'x' is not a decimal number", "[...]")


class Driver:
    """Runs a Feed against a FakeRest with a fake clock; collects what it publishes.

    `fail_next` pages fail with `error` (a passing failure); `silent_next` never answer;
    `failure` makes the next failures permanent ones (unknown pair, not Kraken).
    """

    def __init__(self, feed: Feed, rest: FakeRest | None = None, page_delay: float = 1.0) -> None:
        self.feed = feed
        self.rest = rest
        self.page_delay = page_delay
        self.now = 0.0
        self.published: dict[str, list[int]] = defaultdict(list)
        self.origins: dict[str, list[str]] = defaultdict(list)
        self.message_sizes: list[int] = []
        self.holes: list[Hole] = []
        self.history: list[BackfillEnded] = []
        self.notices: list[Notice] = []
        self.resubscribe_actions: list[Resubscribe] = []
        self.pending: tuple[float, Fetch] | None = None
        self.fetches = 0
        self.fetch_log: list[Fetch] = []
        self.cancelled = 0
        self.fail_next = 0  # the next n pages fail
        self.error = "HTTP 502 Bad Gateway"
        self.failure = RestFailure.PASSING
        self.silent_next = 0  # the next n pages never answer
        self.on_fetch: Callable[[Fetch], None] | None = None

    def live(self, batch: list[Trade]) -> None:
        self.feed.receive(batch, self.now)
        self.drain()

    def drain(self) -> None:
        for action in self.feed.actions():
            if isinstance(action, Publish):
                ids = [t.trade_id for t in action.trades]
                self.published[action.pair].extend(ids)
                self.origins[action.pair].extend([action.origin] * len(ids))
                self.message_sizes.append(len(ids))
            elif isinstance(action, Fetch):
                assert self.pending is None, "two REST requests at once"
                self.fetches += 1
                self.fetch_log.append(action)
                if self.on_fetch is not None:
                    self.on_fetch(action)
                self.pending = (self.now + self.page_delay, action)
            elif isinstance(action, CancelFetch):
                self.cancelled += 1
                self.pending = None
            elif isinstance(action, Hole):
                self.holes.append(action)
            elif isinstance(action, BackfillEnded):
                self.history.append(action)
            elif isinstance(action, Notice):
                self.notices.append(action)
            elif isinstance(action, Resubscribe):
                self.resubscribe_actions.append(action)

    def step(self, seconds: float = 0.1) -> None:
        """Let time pass; answer the pending page when its time has come."""
        self.now += seconds
        if self.pending is not None and self.pending[0] <= self.now:
            _, fetch = self.pending
            if self.silent_next:
                self.silent_next -= 1
                self.pending = (float("inf"), fetch)
            else:
                self.pending = None
                if self.fail_next:
                    self.fail_next -= 1
                    self.feed.page(
                        fetch.request_id, [], 0, self.now, error=self.error, failure=self.failure
                    )
                else:
                    assert self.rest is not None
                    rows, last = self.rest.answer(fetch)
                    self.feed.page(fetch.request_id, rows, last, self.now)
        self.feed.tick(self.now)
        self.drain()

    def run_until_idle(self, limit: float = 100_000.0, seconds: float = 0.5) -> None:
        deadline = self.now + limit
        while (self.feed.repairing or self.pending) and self.now < deadline:
            self.step(seconds)
        assert not self.feed.repairing, "repairs did not end"

    def run_for(self, seconds: float, step: float = 0.5) -> None:
        end = self.now + seconds
        while self.now < end:
            self.step(step)

    def logged(self, level: int) -> list[str]:
        return [n.message for n in self.notices if n.level == level]


def make_feed(**config: object) -> Feed:
    positions = config.pop("positions", {})
    return Feed(FeedConfig(pairs=PAIRS, **config), positions)  # type: ignore[arg-type]
