"""A lane's REST side: reading answers, waiting out failures, escalating long waits, and the
end of a repair (see `lanes` for the whole machine, `pages` for what an answer proves)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .actions import BackfillEnded, HoleReason
from .lane_state import LaneState, duration
from .pages import Outcome, PageHole, read_page
from .repairs import NS_PER_MS, STALLED_AFTER, Repair, RepairKind
from .rows import BadRow
from .trade import Trade

__all__ = ["LaneRepair"]

FIRST_STALL_WARNING = 60.0  # seconds; then a WARNING each time the wait doubles


class LaneRepair(LaneState):
    """The part of a lane that talks with Kraken's REST answers."""

    # --- REST answers --------------------------------------------------------------------

    def page(
        self,
        rows: Sequence[Trade | BadRow],
        since_ns: int,
        last_ns: int,
        now: float,
    ) -> None:
        """The answer to this lane's request from `since_ns`."""
        repair = self.repair
        assert repair is not None
        if repair.kind is RepairKind.CHECK:
            self._check_page(rows, since_ns, now)
            return
        full = len(rows) >= self.config.page_size
        reading = read_page(
            rows,
            self.position,
            self.target,
            repair.broken_reads,
            full=full,
            from_start=since_ns <= 0 or since_ns == repair.floor_ns != 0,
            rereads=self.config.unreadable_reads,
            since_ms=since_ns // NS_PER_MS,
        )
        for step in reading.steps:
            if isinstance(step, PageHole):
                self._hole(step.first, step.last, step.reason, step.detail)
            else:
                self.position = (step[-1].trade_id, step[-1].timestamp_ms)
                repair.fetched += len(step)
                self.out.publish(self.pair, step, "rest")
        if reading.position is not None:
            self.position = reading.position
        if reading.progressed:
            self._advanced(now)
            if self.position is not None and self.position[1] * NS_PER_MS > repair.floor_ns:
                repair.floor_ns = 0
        outcome = reading.outcome
        if outcome is Outcome.REACHED:
            self.finish(now)
        elif outcome is Outcome.MORE:
            if not reading.progressed:  # a whole page at the position's time: step past it
                repair.floor_ns = max(last_ns, repair.floor_ns + 1)
            repair.retry_at = now
        elif outcome is Outcome.ANCHOR:
            if not repair.look_further_back(since_ns):
                self._failed("an answer from the start lacks its first trade", now)
            repair.retry_at = now
        elif outcome is Outcome.REREAD:
            self._failed("a broken row: reading it again before naming it unreadable", now)
        elif outcome is Outcome.MALFORMED:
            self._failed("trade_ids do not rise in the answer", now)
        elif self.target is None:
            self.finish(now)  # a short page, and no held trade to reach: caught up
        else:
            after = self.position[0] if self.position else None
            self._failed(f"Kraken REST has nothing after trade_id {after} yet", now)

    def _check_page(self, rows: Sequence[Trade | BadRow], since_ns: int, now: float) -> None:
        """A regression's check: after the position's time, does Kraken serve trade_ids that
        continue the old sequence (the trades that went back were wrong), or lower ones
        (the sequence restarted)?"""
        assert self.position is not None
        old_id, old_ms = self.position
        for row in rows:
            if type(row) is not Trade or row.timestamp_ms <= old_ms:
                continue
            if row.trade_id > old_id:
                self._old_sequence_goes_on(row)
                return
            if row.trade_id < old_id:
                held = self.follow_new_sequence(
                    row.trade_id,
                    f"Kraken REST serves trade_id {row.trade_id} at {row.timestamp}, after "
                    f"trade_id {old_id}",
                )
                repair = self.repair
                assert repair is not None
                repair.kind = RepairKind.GAP
                repair.first_missing = row.trade_id
                repair.floor_ns = old_ms * NS_PER_MS + NS_PER_MS - 1  # past the old sequence
                repair.advanced(now)
                for trade in held:
                    self._hold(trade, now)
                if not self.held:  # nothing held: the repair brings what REST has
                    repair.chasing = True
                repair.retry_at = now
                return
        repair = self.repair
        assert repair is not None
        if len(rows) >= self.config.page_size:
            last_ms = max((r.timestamp_ms for r in rows if type(r) is Trade), default=old_ms)
            repair.floor_ns = max(repair.floor_ns, since_ns + 1, last_ms * NS_PER_MS - 1)
            repair.retry_at = now
            return
        self._failed(f"Kraken REST has nothing after trade_id {old_id} yet", now)

    def page_failed(self, error: str, now: float) -> None:
        """The request brought no answer (any HTTP status, Kraken error, timeout...): a
        delay, never a loss."""
        self._failed(error, now)

    def _failed(self, said: str, now: float) -> None:
        repair = self.repair
        assert repair is not None
        self.out.stats.rest_failures += 1
        first = repair.failures == 0
        delay = repair.failed(said, now, self.config.retry_initial, self.config.retry_cap)
        if first:
            self.out.note(
                logging.WARNING,
                f"{self.pair}: the {repair.describe(self.target)} repair waits for Kraken REST: "
                f"{said}; asking again in {delay:.3g} s (and for as long as it takes)",
            )

    def check_stall(self, now: float) -> None:
        """Escalate a wait that grows: a WARNING each time it doubles, an ERROR (and
        `/readyz` 503) past `STALLED_AFTER`."""
        repair = self.repair
        if repair is None and self.refused and not self._rest_usable():
            since = self.refused_since if self.refused_since is not None else now
            if now - since >= self.config.stale_after:
                self._follow_without_rest(now)
            return
        if repair is None or not repair.failures:
            return
        age = repair.stalled_for(now)
        what = f"{self.pair}: the {repair.describe(self.target)} repair"
        if age >= STALLED_AFTER and not repair.stalled:
            repair.stalled = True
            repair.warned_after = age
            self.out.note(
                logging.ERROR,
                f"{what} has not advanced for {duration(age)} (/readyz reports it); Kraken "
                f"REST last said: {repair.last_said}; {len(self.held)} live trades held",
            )
        elif age >= max(FIRST_STALL_WARNING, 2 * repair.warned_after) and not repair.stalled:
            repair.warned_after = age
            self.out.note(
                logging.WARNING,
                f"{what} has not advanced for {duration(age)}; Kraken REST last said: "
                f"{repair.last_said}; still asking",
            )

    def rest_unusable_now(self, why: str, now: float) -> None:
        """Kraken's REST cannot serve this pair (unknown pair, or not Kraken at all): the
        repair ends; gaps become holes that say so (not proven)."""
        self.rest_unusable = why
        repair = self.repair
        if repair is None:
            return
        self.out.note(logging.ERROR, f"{self.pair}: Kraken REST cannot repair it: {why}")
        if repair.kind is RepairKind.BACKFILL:
            self.out.add(BackfillEnded(self.pair, False, why))
        elif repair.kind is RepairKind.GAP:
            target = self.target
            if self.position is not None and target is not None and target > self.position[0]:
                self._hole(self.position[0] + 1, target, HoleReason.REST_UNUSABLE, why)
        self._stop()
        self._release(now)

    # --- the end of a repair -------------------------------------------------------------

    def finish(self, now: float) -> None:
        """The repair is over: say so, then release the held trades."""
        repair = self.repair
        assert repair is not None
        position = self.position
        if repair.kind is RepairKind.BACKFILL:
            self.out.note(
                logging.INFO,
                f"Backfill of {self.pair} complete: {repair.fetched} trades fetched, now at "
                f"trade_id {position[0] if position else None}",
            )
            self.out.add(BackfillEnded(self.pair, True, "caught up with the present"))
        else:
            holes = self.out.stats.by_pair["holes", self.pair] - self._holes_at_start
            if not holes:
                self.out.stats.count("repaired", self.pair)
            self.out.note(
                logging.INFO,
                f"Gap in {self.pair} ({repair.describe(self.target)}) repaired: "
                f"{repair.fetched} trades fetched from Kraken REST"
                + (f", {holes} proven hole(s)" if holes else ""),
            )
        self._stop()
        self._release(now)

    def _release(self, now: float) -> None:
        held, self.held = self.held, []
        self.out.held_total -= len(held)
        if held:
            self.live(held, now)
        if self.refused and self.repair is None and self._rest_usable():
            assert self.position is not None  # trades went back meanwhile: check them now
            self._start(Repair(RepairKind.CHECK, now, start_ms=self.position[1]))

    def _advanced(self, now: float) -> None:
        repair = self.repair
        assert repair is not None
        waited = repair.advanced(now)
        if waited is not None:
            self.out.note(
                logging.INFO,
                f"{self.pair}: Kraken REST answers again; the repair goes on after "
                f"{duration(waited)}",
            )
