"""Reading one REST `Trades` answer against a pair's position: what it proves, nothing more.

A hole is a claim about Kraken's data, so it is made only with proof from one answer:

- Kraken served trade_ids on both sides of it and none between (`rest_lacks`); or
- Kraken served the rows themselves, broken, on every one of several re-reads
  (`unreadable`; exactly those trade_ids).

A page boundary proves nothing: `since` is exclusive and the trades of one taker order share
a timestamp, so the rows after a page's last one may sit behind the next cursor. The caller
therefore always asks from just before its position's time (the answer starts with trades it
already has: the left side), and when an answer still starts past the position it asks from
further back (`Outcome.ANCHOR`). An answer to `since=0` has nothing before it, so its first
row is proof by itself.

`read_page` is pure: rows in, steps (trades to publish, holes) and an outcome out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import pairwise

from .actions import HoleReason
from .rows import BadRow
from .trade import Trade

__all__ = ["Outcome", "PageHole", "Reading", "read_page"]

Position = tuple[int, int]  # (trade_id, timestamp_ms)


class Outcome(Enum):
    """Where reading an answer stopped."""

    REACHED = "reached"  # the target trade_id is reached (or proven missing up to it)
    MORE = "more"  # a full page was read: ask for the next one at once
    END = "end"  # a short page was read: Kraken serves nothing newer now
    ANCHOR = "anchor"  # a jump with no row before it in the answer: ask from further back
    REREAD = "reread"  # a broken row: read the page again before naming it
    MALFORMED = "malformed"  # trade_ids not rising: the answer cannot be trusted


@dataclass(frozen=True, slots=True)
class PageHole:
    """trade_ids `first..last` proven missing (`reason`), after the trade of time `after_ms`."""

    first: int
    last: int
    reason: HoleReason
    detail: str


@dataclass
class Reading:
    """What one answer gives: in order, runs of trades to publish and proven holes."""

    steps: list[list[Trade] | PageHole] = field(default_factory=list)
    position: Position | None = None
    outcome: Outcome = Outcome.END
    progressed: bool = False  # something was published or proven


def read_page(
    rows: Sequence[Trade | BadRow],
    position: Position | None,
    target: int | None,
    broken_reads: dict[int, int],
    *,
    full: bool,
    from_start: bool,
    rereads: int,
    since_ms: int = 0,
) -> Reading:
    """Read `rows` (one answer, in Kraken's order) from `position` towards `target`.

    :param position: the last trade_id accounted for (published or in a hole) and its time;
        None at the start of a backfill (the first row starts the sequence).
    :param target: the last trade_id to reach (the one before the first held live trade);
        None: as far as Kraken serves.
    :param broken_reads: first missing trade_id -> answers that served a broken row there
        (kept by the caller between answers; updated here).
    :param full: the answer held as many rows as asked for (more may follow).
    :param from_start: the request's `since` was 0 or a cursor past which nothing can be
        re-read: nothing exists before the first row, so a jump there is proven.
    :param rereads: answers that must serve a row broken before it is named unreadable.
    :param since_ms: the request's `since` in ms: the time a hole at a backfill's very start
        is placed after (its trade before is unknown).
    """
    known = [row.trade_id for row in rows if row.trade_id is not None]
    if any(b <= a for a, b in pairwise(known)):
        return Reading(position=position, outcome=Outcome.MALFORMED)
    reader = _Reader(rows, position, target, from_start, since_ms)
    outcome = Outcome.MORE if full else Outcome.END
    for index, row in enumerate(rows):
        if type(row) is BadRow:
            stop = reader.broken(row, index, broken_reads, rereads)
        else:
            stop = reader.trade(row)
        if stop is not None:
            outcome = stop
            break
    return reader.done(outcome)


class _Reader:
    """`read_page`'s walk through one answer: where it stands, and what it found."""

    def __init__(
        self,
        rows: Sequence[Trade | BadRow],
        position: Position | None,
        target: int | None,
        from_start: bool,
        since_ms: int,
    ) -> None:
        self.rows = rows
        self.pos = position
        self.target = target
        self.from_start = from_start
        self.since_ms = since_ms
        self.reading = Reading(position=position)
        self.fresh: list[Trade] = []
        self.prev: int | None = None  # trade_id of the row before in this answer (None: unknown)
        self.first = True  # no row before in this answer

    def trade(self, row: Trade) -> Outcome | None:
        """A readable row; an outcome when the answer is read as far as it goes."""
        rid, pos = row.trade_id, self.pos
        if pos is not None and rid <= pos[0]:
            self._passed(rid)  # a row already accounted for: the left side of anything next
            return None
        if self._beyond_target(rid):
            return self._reach(rid)
        if pos is not None and rid > pos[0] + 1:
            if not self._proven():
                return Outcome.ANCHOR
            self._hole(pos[0] + 1, rid - 1, HoleReason.REST_LACKS, _lacks(self.prev, rid))
        self.fresh.append(row)
        self.pos = (rid, row.timestamp_ms)
        self._passed(rid)
        return Outcome.REACHED if self.target is not None and rid >= self.target else None

    def broken(
        self, row: BadRow, index: int, broken_reads: dict[int, int], rereads: int
    ) -> Outcome | None:
        """An unreadable row; an outcome when the answer is read as far as it goes."""
        rid, pos = row.trade_id, self.pos
        if pos is not None and rid is not None and rid <= pos[0]:
            self._passed(rid)
            return None
        if rid is not None and self._beyond_target(rid):
            return self._reach(rid)
        step = _broken(row, index, self.rows, pos, self.prev, self.target, broken_reads, rereads)
        if step is None:  # before a backfill's start, or counted with the rows around it
            self.prev, self.first = None, False
            return None
        if isinstance(step, Outcome):
            return step
        missing_first, missing_last, lacking_before, reason = step
        if (lacking_before is not None or rid is None) and not self._proven():
            return Outcome.ANCHOR
        if lacking_before is not None:
            assert pos is not None
            self._hole(pos[0] + 1, lacking_before, HoleReason.REST_LACKS, _lacks(self.prev, rid))
        what = "this row" if rid is not None else "rows with no readable trade_id"
        detail = f"Kraken REST served {what} broken on {rereads} reads: {row.reason}"
        self._hole(missing_first, missing_last, reason, detail)
        self._passed(rid)
        target = self.target
        return Outcome.REACHED if target is not None and missing_last >= target else None

    def done(self, outcome: Outcome) -> Reading:
        self._flush()
        self.reading.position = self.pos
        self.reading.outcome = outcome
        return self.reading

    def _beyond_target(self, rid: int) -> bool:
        return self.target is not None and rid > self.target

    def _reach(self, rid: int) -> Outcome:
        """A row past the target: the rest of the gap up to it is not served (if proven)."""
        pos, target = self.pos, self.target
        assert target is not None
        if pos is not None and pos[0] < target:
            if not self._proven():
                return Outcome.ANCHOR
            self._hole(pos[0] + 1, target, HoleReason.REST_LACKS, _lacks(self.prev, rid))
        return Outcome.REACHED

    def _proven(self) -> bool:
        return self.prev is not None or (self.first and self.from_start)

    def _passed(self, rid: int | None) -> None:
        self.prev, self.first = rid, False

    def _flush(self) -> None:
        if self.fresh:
            self.reading.steps.append(self.fresh)
            self.reading.progressed = True
            self.fresh = []

    def _hole(self, first_id: int, last_id: int, reason: HoleReason, detail: str) -> None:
        self._flush()
        self.reading.steps.append(PageHole(first_id, last_id, reason, detail))
        self.reading.progressed = True
        pos = self.pos
        self.pos = (last_id, pos[1] if pos else self.since_ms)


def _broken(
    row: BadRow,
    index: int,
    rows: Sequence[Trade | BadRow],
    pos: Position | None,
    prev: int | None,
    target: int | None,
    broken_reads: dict[int, int],
    rereads: int,
) -> tuple[int, int, int | None, HoleReason] | Outcome | None:
    """A broken row after the position: re-read, or the trade_ids it costs.

    Returns `Outcome.REREAD` while it has not been served broken `rereads` times; else
    (first, last, lacking_before, reason): the trade_ids lost, why, and when the row's own
    trade_id leaps past the position, the last trade_id of the stretch before it that is not
    served. A row whose trade_id is unreadable too is bounded by the readable rows around
    it: `unreadable` when the broken rows there are as many as the trade_ids between, else
    `rest_lacks` (some are not served; which ones cannot be told). None: nothing to do (a row
    before a backfill's first trade, or one already counted with the rows around it).
    """
    rid = row.trade_id
    reason = HoleReason.UNREADABLE
    if rid is not None:
        first = rid
        last = rid
        lacking_before = rid - 1 if pos is not None and rid > pos[0] + 1 else None
    else:
        if pos is None:
            return None
        # bounded by the next readable trade_id in the answer
        after = next((r.trade_id for r in rows[index + 1 :] if r.trade_id is not None), None)
        if after is None:
            return Outcome.REREAD  # nothing bounds it yet: an answer from closer to it will
        first = pos[0] + 1
        last = after - 1 if target is None else min(after - 1, target)
        lacking_before = None
        if last < first:
            return None
        broken = 0  # unreadable rows between the readable ones around this one
        for other in rows[index:]:
            if other.trade_id is not None:
                break
            broken += 1
        if prev is None or broken != after - 1 - prev:
            reason = HoleReason.REST_LACKS
    reads = broken_reads.get(first, 0) + 1
    broken_reads[first] = reads
    if reads < rereads:
        return Outcome.REREAD
    return first, last, lacking_before, reason


def _lacks(before: int | None, after: int | None) -> str:
    if before is None:
        return f"Kraken REST serves nothing before trade_id {after}"
    return f"Kraken REST served trade_id {before} then {after}, none between"
