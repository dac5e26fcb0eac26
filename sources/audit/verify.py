"""The topic against Kraken's REST `Trades`, trade by trade. No I/O.

`TimePager` says where the next page starts. Kraken's `since` is exclusive and several trades
can share one time, so a page boundary can fall inside such a group: paging on from the last
row's time would skip the rest of the group. The pager starts the next page one nanosecond
before the last row's time instead (re-reading the group) and drops the rows it has seen by
trade_id. Only when a whole page shares one time (more than a page of trades at one instant)
does it move on by Kraken's `last` cursor, and says so.

`PairVerifier` gets the topic's records of one pair (in topic order) and the REST trades of
the same window (in trade_id order) and finds, per trade Kraken serves:

- the topic's record of it: compared field by field, exactly, in the form the topic has:
  a decimal string (`decimal_strings`) must be Kraken's decimal, written plain; a number must
  be the double nearest to Kraken's decimal; side, order type, `timestamp` (to the
  microsecond, as Kraken's WebSocket writes it) and `timestamp_ms`;
- or a hole of the topic: Kraken serves the trade, so the hole is a real loss;
- or, before the topic's first or after its last trade in an explicit window: missing there.

A record of the topic that Kraken does not serve is listed (`not_served`): Kraken's history
lacks trades at times, so this does not fail the audit by itself.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .findings import Findings, Hole, RestMismatch
from .rest_rows import RestTrade, TradesAnswer, plain_decimal
from .schema import timestamp_us_of

__all__ = ["PairVerifier", "TimePager"]

PAGE = 1000


class TimePager:
    """Where each `Trades` page of a window starts, and when the window is done.

    :param start_ns: the window's first time (inclusive); `end_ns` its last (inclusive).
    :ivar since: the `since` of the next call.
    :ivar jumps: how often a page held nothing new and the pager moved on by the cursor.
    """

    def __init__(self, start_ns: int, end_ns: int) -> None:
        self.since = start_ns - 1
        self.end_ns = end_ns
        self.last_id = -1
        self.done = False
        self.jumps = 0

    def take(self, answer: TradesAnswer) -> list[RestTrade]:
        """The page's trades not seen before and within the window; moves `since` on."""
        rows = answer.trades
        full = len(rows) + len(answer.bad_rows) >= PAGE
        new = [t for t in rows if t.trade_id > self.last_id]
        if not new:
            if full and (answer.last or 0) > self.since:
                self.since = answer.last  # a whole page at one instant: on by the cursor
                self.jumps += 1
            else:
                self.done = True
            return []
        self.last_id = max(t.trade_id for t in new)
        kept = [t for t in new if t.time_ns <= self.end_ns]
        if len(kept) < len(new):
            self.done = True
            return kept
        boundary = max(t.time_ns for t in rows)
        if boundary - 1 > self.since:
            self.since = boundary - 1  # re-read the last row's instant: it may hold more
        elif full and (answer.last or 0) > self.since:
            self.since = answer.last  # a whole page at one instant: on by the cursor
            self.jumps += 1
        else:
            self.done = True  # a short page at one instant: Kraken has nothing after it
        return kept


class PairVerifier:
    """One pair's topic records against Kraken's trades of the same window.

    :param first_id: the pair's first trade_id in the topic's window; `last_id` its last.
    :param holes: the topic's holes of the pair: each gets `rest_served`.
    :param since_ns: the window's start when given explicitly (trades Kraken serves between
        it and `first_id` are missing), else None; `until_ns` likewise for the end.
    """

    def __init__(
        self,
        pair: str,
        first_id: int,
        last_id: int,
        holes: Iterable[Hole],
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        max_findings: int = 1000,
    ) -> None:
        self.pair = pair
        self.first_id = first_id
        self.last_id = last_id
        self.holes = sorted(holes, key=lambda h: h.first_id)
        self._starts = [h.first_id for h in self.holes]
        for hole in self.holes:
            hole.rest_served = 0
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.topic_high = -1  # highest trade_id of the topic's records given so far
        self.compared = 0
        self.served = 0  # trades Kraken served within the topic's range
        self.not_compared = 0  # served, not a hole, but the topic's record was elsewhere
        self.late = 0  # the topic's records that came after their REST page (out of order)
        self._checked_to = -1  # the highest trade_id of the REST pages checked
        self.mismatches: Findings[RestMismatch] = Findings(max_findings)
        self.missing_start: Findings[int] = Findings(max_findings)
        self.missing_end: Findings[int] = Findings(max_findings)
        self.not_served: Findings[int] = Findings(max_findings)
        self._buffer: dict[int, dict[str, Any]] = {}

    def add_topic(self, record: dict[str, Any]) -> None:
        """A record of this pair from the topic (in topic order; a repeat is ignored here:
        the accounting has reported it)."""
        trade_id = record["trade_id"]
        if trade_id <= self._checked_to:  # out of order, behind the pages: not comparable
            self.late += 1
            return
        self._buffer.setdefault(trade_id, record)
        if trade_id > self.topic_high:
            self.topic_high = trade_id

    def check(self, trades: Iterable[RestTrade]) -> None:
        """REST trades in trade_id order; the topic's records up to the last of them must
        have been given (`topic_high` past it, or the topic's end)."""
        up_to = -1
        for trade in trades:
            up_to = trade.trade_id
            record = self._buffer.pop(trade.trade_id, None)
            if record is not None:
                self.served += 1
                self._compare(record, trade)
            elif trade.trade_id < self.first_id:
                if self.since_ns is not None and trade.time_ns >= self.since_ns:
                    self.missing_start.add(trade.trade_id)
            elif trade.trade_id > self.last_id:
                if self.until_ns is not None and trade.time_ns <= self.until_ns:
                    self.missing_end.add(trade.trade_id)
            else:
                self.served += 1
                hole = self._hole_of(trade.trade_id)
                if hole is not None:
                    hole.rest_served = (hole.rest_served or 0) + 1
                else:
                    self.not_compared += 1
        self._unserved(up_to)

    def finish(self) -> None:
        """After the last page: the topic's records given since, Kraken never served."""
        self._unserved(max(self._buffer, default=-1))

    def _unserved(self, up_to: int) -> None:
        self._checked_to = max(self._checked_to, up_to)
        for trade_id in sorted(i for i in self._buffer if i <= up_to):
            del self._buffer[trade_id]
            self.not_served.add(trade_id)

    def _hole_of(self, trade_id: int) -> Hole | None:
        index = bisect_right(self._starts, trade_id) - 1
        if index >= 0 and trade_id <= self.holes[index].last_id:
            return self.holes[index]
        return None

    def _compare(self, record: dict[str, Any], trade: RestTrade) -> None:
        self.compared += 1
        for field, topic, rest in _differences(record, trade):
            self.mismatches.add(RestMismatch(trade.trade_id, field, topic, rest))


def _differences(record: dict[str, Any], trade: RestTrade) -> list[tuple[str, Any, Any]]:
    found = []
    for field, rest in (("price", trade.price), ("volume", trade.volume)):
        topic = record.get(field)
        if not _same_decimal(topic, rest):
            found.append((field, topic, rest))
    if record.get("side") != trade.side:
        found.append(("side", record.get("side"), trade.side))
    if record.get("order_type") != trade.order_type:
        found.append(("order_type", record.get("order_type"), trade.order_type))
    stamp = record.get("timestamp")
    if timestamp_us_of(stamp) != trade.time_us:
        found.append(("timestamp", stamp, _rest_time(trade)))
    if record.get("timestamp_ms") != trade.time_us // 1000:
        found.append(("timestamp_ms", record.get("timestamp_ms"), trade.time_us // 1000))
    return found


def _same_decimal(topic: Any, rest: str) -> bool:
    """The topic's value is Kraken's decimal `rest`, exactly, in the topic's form."""
    if type(topic) is str:
        return topic == plain_decimal(rest)
    if type(topic) in (int, float):
        return float(topic) == float(rest)  # the double nearest Kraken's decimal
    return False


def _rest_time(trade: RestTrade) -> str:
    seconds, nanos = divmod(trade.time_ns, 1_000_000_000)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{nanos:09d}".rstrip("0").rstrip(".") + "Z"
