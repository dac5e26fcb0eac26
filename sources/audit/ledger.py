"""One pair's trade_ids as they arrive: holes, duplicates and trade_ids out of order.

Kraken's trade_id rises by one per trade within a pair, so the ids a topic holds are a range
`low..high` minus its holes. The ledger keeps exactly that: the two ends and the open holes
(sorted intervals), never the ids themselves. An arriving id is then one of:

- `high + 1`: in order (the caller's fast path does this without calling `add`);
- above `high + 1`: in order, after a hole `high + 1..id - 1` (which later ids may fill);
- inside an open hole: out of order (a reader had seen `high` already); the hole shrinks;
- within `low..high` but in no hole: a duplicate, however far from its first copy;
- below `low`: out of order, before everything so far (and a hole if not adjacent).

Memory is the open holes, not the trades: flat from a thousand trades to billions. The bound
is `max_open_holes` per pair: past it the lowest hole is closed (final, reported as is), and a
later id below it that is in no open hole can no longer be told a duplicate from a late
arrival into the closed hole: it is reported as `undetermined`. A clean topic, or one with
thousands of holes, never gets there.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right

from .findings import Findings, Hole, Run

__all__ = ["MAX_OPEN_HOLES", "SequenceLedger"]

MAX_OPEN_HOLES = 100_000


class SequenceLedger:
    """The trade_ids of one pair, `low..high` minus the holes.

    `high` and `high_ms` are public so that the caller may take the usual step (`id == high
    + 1`) itself: `ledger.high = id; ledger.high_ms = ms` is all `add` would do for it.

    :param trade_id: the pair's first trade_id; `ms` its time.
    :param max_findings: most findings of each kind kept (all are counted).
    :param max_open_holes: most holes tracked for late arrivals (see the module's notes).
    """

    __slots__ = (
        "_dup_run",
        "_ends",
        "_forgotten_to",
        "_late_run",
        "_open",
        "_starts",
        "closed",
        "duplicate_records",
        "duplicates",
        "high",
        "high_ms",
        "late",
        "late_records",
        "low",
        "low_ms",
        "max_open_holes",
        "undetermined",
        "undetermined_records",
    )

    def __init__(
        self,
        trade_id: int,
        ms: int,
        *,
        max_findings: int = 1000,
        max_open_holes: int = MAX_OPEN_HOLES,
    ) -> None:
        self.low = self.high = trade_id
        self.low_ms = self.high_ms = ms
        self.max_open_holes = max_open_holes
        self._starts: list[int] = []  # open holes, sorted: first ids ...
        self._ends: list[int] = []  # ... last ids ...
        self._open: list[Hole] = []  # ... and the holes themselves
        self.closed: list[Hole] = []  # holes closed early (over max_open_holes)
        self._forgotten_to = -(2**63)  # ids up to here may fill holes no longer tracked
        self.duplicates: Findings[Run] = Findings(max_findings)
        self.late: Findings[Run] = Findings(max_findings)
        self.undetermined: Findings[Run] = Findings(max_findings)
        self.duplicate_records = self.late_records = self.undetermined_records = 0
        self._dup_run: Run | None = None
        self._late_run: Run | None = None

    def add(self, trade_id: int, ms: int, partition: int = -1, offset: int = -1) -> None:
        """Account for one arriving trade_id of time `ms` (at `partition`/`offset`)."""
        high = self.high
        if trade_id == high + 1:
            self.high, self.high_ms = trade_id, ms
        elif trade_id > high:
            self._open_hole(len(self._starts), Hole(high + 1, trade_id - 1, self.high_ms, ms))
            self.high, self.high_ms = trade_id, ms
        elif trade_id >= self.low:
            index = bisect_right(self._starts, trade_id) - 1
            if index >= 0 and trade_id <= self._ends[index]:
                self._fill(index, trade_id, ms)
                self._late(trade_id, high, partition, offset)
            elif trade_id <= self._forgotten_to:
                self.undetermined_records += 1
                self.undetermined.add(Run(trade_id, trade_id, partition, offset, high))
            else:
                self.duplicate_records += 1
                self._dup_run = self._extend(
                    self._dup_run, self.duplicates, trade_id, None, partition, offset
                )
        else:  # before everything so far
            if trade_id < self.low - 1:
                self._open_hole(0, Hole(trade_id + 1, self.low - 1, ms, self.low_ms))
            self.low, self.low_ms = trade_id, ms
            self._late(trade_id, high, partition, offset)

    def _late(self, trade_id: int, after_id: int, partition: int, offset: int) -> None:
        self.late_records += 1
        self._late_run = self._extend(
            self._late_run, self.late, trade_id, after_id, partition, offset
        )

    def holes(self) -> list[Hole]:
        """Every hole, the closed ones first, each in trade_id order."""
        return [*self.closed, *self._open]

    def merge(self, other: SequenceLedger) -> None:
        """Take in the ledger of the same pair's records read elsewhere (another partition,
        by another reader): its ids join these, an id both saw is a duplicate, a hole is
        what neither saw. Their relative order is unknown, so no id of one is out of order
        against the other; each keeps its own order findings."""
        mine, theirs = self._seen(), other._seen()
        both = _intersection(mine, theirs)
        known = [*self.holes(), *other.holes()]
        if other.low < self.low:
            self.low, self.low_ms = other.low, other.low_ms
        if other.high > self.high:
            self.high, self.high_ms = other.high, other.high_ms
        holes = [_hole_within(first, last, known) for first, last in _gaps(_union(mine, theirs))]
        self.closed = []
        self._open = holes
        self._starts = [h.first_id for h in holes]
        self._ends = [h.last_id for h in holes]
        self._forgotten_to = max(self._forgotten_to, other._forgotten_to)
        for first, last in both:
            self.duplicates.add(Run(first, last, -1, -1))
            self.duplicate_records += last - first + 1
        self.duplicates.extend(other.duplicates)
        self.duplicate_records += other.duplicate_records
        self.late.extend(other.late)
        self.late_records += other.late_records
        self.undetermined.extend(other.undetermined)
        self.undetermined_records += other.undetermined_records

    def _seen(self) -> list[tuple[int, int]]:
        """The ids this ledger saw, as sorted intervals: `low..high` minus the holes."""
        seen, start = [], self.low
        for hole in sorted(self.holes(), key=lambda h: h.first_id):
            if hole.first_id > start:
                seen.append((start, hole.first_id - 1))
            start = hole.last_id + 1
        if start <= self.high:
            seen.append((start, self.high))
        return seen

    @property
    def placed(self) -> int:
        """How many records it placed: every id of `low..high` not in a hole, once, plus
        the repeats (duplicates and undetermined)."""
        missing = sum(hole.count for hole in self.holes())
        span = self.high - self.low + 1
        return span - missing + self.duplicate_records + self.undetermined_records

    @property
    def open_holes(self) -> int:
        return len(self._starts)

    def _open_hole(self, index: int, hole: Hole) -> None:
        self._starts.insert(index, hole.first_id)
        self._ends.insert(index, hole.last_id)
        self._open.insert(index, hole)
        if len(self._starts) > self.max_open_holes:
            lowest = self._open.pop(0)
            del self._starts[0], self._ends[0]
            self.closed.append(lowest)
            self._forgotten_to = max(self._forgotten_to, lowest.last_id)

    def _fill(self, index: int, trade_id: int, ms: int) -> None:
        """Take `trade_id` out of open hole `index`: shrink it, split it or close it."""
        hole = self._open[index]
        if hole.first_id == hole.last_id:
            del self._starts[index], self._ends[index], self._open[index]
        elif trade_id == hole.first_id:
            hole.first_id = self._starts[index] = trade_id + 1
            hole.previous_ms = ms
        elif trade_id == hole.last_id:
            hole.last_id = self._ends[index] = trade_id - 1
            hole.next_ms = ms
        else:
            upper = Hole(trade_id + 1, hole.last_id, ms, hole.next_ms)
            hole.last_id = self._ends[index] = trade_id - 1
            hole.next_ms = ms
            self._starts.insert(index + 1, upper.first_id)
            self._ends.insert(index + 1, upper.last_id)
            self._open.insert(index + 1, upper)

    @staticmethod
    def _extend(
        run: Run | None,
        findings: Findings[Run],
        trade_id: int,
        after_id: int | None,
        partition: int,
        offset: int,
    ) -> Run:
        """Add `trade_id` to the current run when it continues it, else start a new run."""
        if run is not None and trade_id == run.last_id + 1 and run.after_id == after_id:
            run.last_id = trade_id
            return run
        run = Run(trade_id, trade_id, partition, offset, after_id)
        findings.add(run)
        return run


def _union(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted([*a, *b]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _intersection(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    found, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        first, last = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if first <= last:
            found.append((first, last))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


def _gaps(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(a[1] + 1, b[0] - 1) for a, b in itertools.pairwise(intervals)]


def _hole_within(first: int, last: int, known: list[Hole]) -> Hole:
    """A hole of merged ledgers, with the times around it from a hole that holds it."""
    for hole in known:
        if hole.first_id <= first and last <= hole.last_id:
            return Hole(first, last, hole.previous_ms, hole.next_ms)
    return Hole(first, last, None, None)
