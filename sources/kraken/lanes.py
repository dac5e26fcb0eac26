"""One lane per pair: its sequence, and the state machine that keeps it whole.

A lane is, at any time:

- **live**: trades that continue its position are published as they come;
- **suspect**: a trade leapt far ahead (more than `LEAP_TO_CONFIRM`); it waits for the next
  trade to agree before the leap counts (a bogus trade_id must not start a repair of
  millions of trades);
- **repairing** (`Repair`): trades are missing; REST pages bring them while the live trades
  wait, held (bounded; past the bound they are let go and REST brings them too);
- **checking a regression**: live trades went back to lower trade_ids with newer times; they
  are held until Kraken's REST says which sequence is current.

Two invariants hold in every state:

1. A hole is declared only with proof from what Kraken's REST served (`pages.read_page`),
   or with a reason that says it is not proven (repair off, REST unusable, an opt-in cap).
   Every other trouble (errors, lag, throttling, short pages) is a delay, waited out.
2. A trade_id the lane received and has not published is published, held, or fetched again:
   a hole never covers it.

The lane appends its actions to the shared `Outbox`; `feed.Feed` routes inputs to lanes and
schedules their REST requests.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .actions import BackfillEnded, Hole, HoleReason, Outbox
from .pages import Outcome, PageHole, read_page
from .repairs import NS_PER_MS, STALLED_AFTER, Repair, RepairKind
from .rows import BadRow
from .trade import Trade

if TYPE_CHECKING:
    from .config import FeedConfig

__all__ = ["LEAP_TO_CONFIRM", "Lane", "Repair", "RepairKind"]

LEAP_TO_CONFIRM = 1000  # a leap over more missing trades waits for the next trade to agree
FIRST_STALL_WARNING = 60.0  # seconds; then a WARNING each time the wait doubles
SECONDS_PER_PAGE_FLOOR = 1.0


class Lane:
    """The state of one pair (see the module docstring).

    :param pair: the Kraken v2 symbol.
    :param position: (trade_id, timestamp_ms) of the last trade accounted for (published,
        or in a hole), None before any.
    :param config: the core's settings.
    :param out: where its actions go.
    """

    def __init__(
        self,
        pair: str,
        position: tuple[int, int] | None,
        config: FeedConfig,
        out: Outbox,
    ) -> None:
        self.pair = pair
        self.position = position
        self.config = config
        self.out = out
        self.repair: Repair | None = None
        self.held: list[Trade] = []  # live trades behind the repair, by trade_id
        self.suspect: Trade | None = None
        self.refused: list[Trade] = []  # newer trades with lower trade_ids (a regression?)
        self.refused_since: float | None = None
        self.rest_unusable: str | None = None  # why REST cannot repair this pair
        self.turn = 0  # when the lane last got a REST page (round-robin)
        self.heard_at: float | None = None  # a live trade last arrived, or a probe went out
        self.probe: int | None = None  # a resubscribe is out: the trade_id it stood at

    # --- what the feed asks --------------------------------------------------------------

    @property
    def target(self) -> int | None:
        """The last trade_id the repair must reach: the one before the first held trade; the
        last one received, once held trades were let go; None: as far as REST serves (a
        history with no live trade yet)."""
        repair = self.repair
        if repair is None:
            return None
        if repair.chasing:
            return repair.chase_to
        if not self.held:
            return None
        return self.held[0].trade_id - 1

    def wants_page(self, now: float) -> bool:
        return self.repair is not None and self.repair.retry_at <= now

    def since_ns(self) -> int:
        assert self.repair is not None
        return self.repair.since_ns(self.position)

    def unready(self) -> str | None:
        """Why the pair makes the pipeline unready (None: it does not)."""
        if self.rest_unusable is not None:
            return "rest_unusable"
        if self.refused:
            return "sequence_regression"
        if self.repair is not None and self.repair.stalled:
            return "repair_stalled"
        return None

    def stalled_seconds(self, now: float) -> float:
        """Seconds the repair has gone without progress while failing (0: none, or going)."""
        repair = self.repair
        if repair is None or not repair.failures:
            return 0.0
        return repair.stalled_for(now)

    # --- live trades ---------------------------------------------------------------------

    def receive(self, trades: list[Trade], now: float) -> None:
        """Live trades of this pair from the WebSocket, in trade_id order."""
        self.heard_at = now
        if self.probe is not None:
            self._probe_answered(trades[-1].trade_id)
        self.live(trades, now)

    def live(self, trades: list[Trade], now: float) -> None:
        """Live trades, in trade_id order: new ones, or held ones released."""
        fresh: list[Trade] = []
        pos = self.position
        for trade in trades:
            if (
                pos is not None
                and trade.trade_id == pos[0] + 1
                and self.repair is None
                and self.suspect is None
                and not self.refused
            ):  # the usual case: it continues the sequence
                fresh.append(trade)
                pos = (trade.trade_id, trade.timestamp_ms)
                continue
            if fresh:
                self._publish_live(fresh, pos)
                fresh = []
            if self._one(trade, now):  # it goes on the sequence (after a hole, maybe)
                fresh.append(trade)
                pos = (trade.trade_id, trade.timestamp_ms)
            else:
                pos = self.position
        if fresh:
            self._publish_live(fresh, pos)

    def _one(self, trade: Trade, now: float) -> bool:
        """A live trade that does not simply continue the sequence: True when it is to be
        published next (the caller publishes it), False when it was dealt with here."""
        tid = trade.trade_id
        pos = self.position
        repair = self.repair
        if pos is not None and (self.refused or (repair and repair.kind is RepairKind.CHECK)):
            if tid < pos[0] and trade.timestamp_ms > pos[1]:
                self._refuse(trade, now)
                return False
            if tid <= pos[0]:
                self.out.stats.duplicates += 1
                return False
            self._old_sequence_goes_on(trade)
            repair = self.repair
        if repair is not None:
            self._hold(trade, now)
            return False
        if pos is None:
            return True  # the first trade the pipeline sees of this pair
        if tid <= pos[0]:
            if tid < pos[0] and trade.timestamp_ms > pos[1]:
                self._refuse(trade, now)
            else:
                self.out.stats.duplicates += 1  # a replay, e.g. the snapshot after a reconnect
            return False
        suspect = self.suspect
        if suspect is not None:
            verdict = self._settle_suspect(trade)
            if verdict == "same":
                return False
            if verdict == "confirm":  # the sequence really moved there
                self.suspect = None
                self._settle(suspect, self._leap(suspect, now, confirmed=True))
                return self._one(trade, now)
            if verdict == "below" and tid > pos[0] + 1:  # an older trade of the leap's gap
                self.suspect = None
                self._settle(trade, self._leap(trade, now, confirmed=True))
                self._settle(suspect, self._one(suspect, now))
                return False
        if tid == pos[0] + 1:
            return True
        return self._leap(trade, now, confirmed=False)

    def _settle(self, trade: Trade, publish: bool) -> None:
        """Publish `trade` now if `_one` or `_leap` said it goes on the sequence."""
        if publish:
            self._publish_live([trade], (trade.trade_id, trade.timestamp_ms))

    def _publish_live(self, fresh: list[Trade], pos: tuple[int, int] | None) -> None:
        if fresh:
            self.position = pos
            self.out.publish(self.pair, fresh, "ws")

    def _leap(self, trade: Trade, now: float, *, confirmed: bool) -> bool:
        """`trade` leaps past the position: repair the gap (or wait for a far leap to be
        confirmed, or, without REST or past an opt-in `max_gap`, say it is a hole). True
        when the trade is to be published next (after a hole)."""
        assert self.position is not None
        last_id, last_ms = self.position
        missing = trade.trade_id - last_id - 1
        if missing > LEAP_TO_CONFIRM and not confirmed:
            self.suspect = trade
            return False
        first, last = last_id + 1, trade.trade_id - 1
        unproven = self._unproven_reason(missing)
        if unproven is not None:
            reason, detail = unproven
            self._hole(first, last, reason, detail)
            return True
        self.out.stats.count("gaps", self.pair)
        self.out.note(
            logging.WARNING,
            f"Gap in {self.pair}: trade_id {first}..{last} ({missing} trades) missed; "
            f"fetching them from Kraken REST{self._eta(missing)}",
        )
        self._start(Repair(RepairKind.GAP, now, first_missing=first, start_ms=last_ms))
        self._hold(trade, now)
        return False

    def _unproven_reason(self, missing: int) -> tuple[HoleReason, str] | None:
        """Why a gap of `missing` trades cannot be repaired (None: it can)."""
        if not self.config.repair:
            return HoleReason.REPAIR_OFF, "repair is off (kraken_rest_url empty)"
        if self.rest_unusable is not None:
            return HoleReason.REST_UNUSABLE, self.rest_unusable
        max_gap = self.config.max_gap
        if max_gap and missing > max_gap:
            return HoleReason.MAX_GAP, f"{missing} trades, more than max_gap ({max_gap})"
        return None

    def _eta(self, missing: int) -> str:
        pages = -(-missing // self.config.page_size)
        if pages < 10:
            return ""
        seconds = pages * max(self.config.rest_interval, SECONDS_PER_PAGE_FLOOR)
        return f" (about {pages} pages: {_duration(seconds)} at the REST budget)"

    def _settle_suspect(self, trade: Trade) -> str:
        """A trade after a far leap, by the order of trade_ids and times: `confirm` (newer,
        above it: the sequence really moved there), `below` (older, below it: a trade of the
        leap's gap, e.g. a snapshot), `same` (the leap's trade again), or `deny` (the two
        disagree, or the trade simply continues the position, which a real leap rules out:
        the leap's trade is dropped; if it was real, REST brings it later)."""
        suspect = self.suspect
        assert suspect is not None
        tid, ms = trade.trade_id, trade.timestamp_ms
        if tid == suspect.trade_id:
            self.out.stats.duplicates += 1
            return "same"
        if tid > suspect.trade_id and ms >= suspect.timestamp_ms:
            return "confirm"
        position = self.position
        continues = position is not None and tid == position[0] + 1
        if tid < suspect.trade_id and ms < suspect.timestamp_ms and not continues:
            return "below"
        self.suspect = None
        self._out_of_sequence(suspect, "a far leap that the next trade does not confirm")
        return "deny"

    def _hold(self, trade: Trade, now: float) -> None:
        """Keep a live trade behind the repair, in trade_id order (bounded)."""
        repair = self.repair
        assert repair is not None
        position = self.position
        tid = trade.trade_id
        if position is not None and tid <= position[0]:
            if tid < position[0] and trade.timestamp_ms > position[1]:
                self._refuse(trade, now)  # checked once the repair is over
            else:
                self.out.stats.duplicates += 1
            return
        if repair.chasing:
            self.out.stats.let_go += 1  # REST brings it
            if repair.chase_to is None or tid > repair.chase_to:
                repair.chase_to = tid
            return
        held = self.held
        if not held or tid > held[-1].trade_id:
            held.append(trade)
        else:
            index = bisect_left(held, tid, key=_trade_id)
            if held[index].trade_id == tid:
                self.out.stats.duplicates += 1
                return
            held.insert(index, trade)
        self.out.held_total += 1
        if len(held) > self.config.max_held:
            self.let_go(f"max_held ({self.config.max_held})")

    def let_go(self, bound: str) -> None:
        """Too many held trades: drop them from memory; the repair fetches everything up to
        the present from REST instead (they are fetched again, never lost)."""
        repair = self.repair
        assert repair is not None
        count = len(self.held)
        if count:
            repair.chase_to = max(repair.chase_to or 0, self.held[-1].trade_id)
        self.held.clear()
        self.out.held_total -= count
        repair.chasing = True
        self.out.stats.let_go += count
        self.out.note(
            logging.WARNING,
            f"{self.pair}: {count} live trades held behind the {repair.describe(None)} "
            f"repair exceed {bound}; letting them go, the repair now fetches everything up "
            "to the present from REST",
        )

    # --- a regression: trade_ids that go back --------------------------------------------

    def _refuse(self, trade: Trade, now: float) -> None:
        """A trade with a lower trade_id yet a newer time than the position: hold it while
        the pair's sequence is checked (never published on its own, never lost unseen)."""
        assert self.position is not None
        if not self.refused:
            self.refused_since = now
            self.out.stats.count("regressions", self.pair)
            check = (
                "checking with Kraken's REST which sequence is current"
                if self._rest_usable()
                else "following it if no trade continues the old one for "
                f"{self.config.stale_after:g} s"
            )
            self.out.note(
                logging.ERROR,
                f"{self.pair}: trade_ids went back: trade_id {trade.trade_id} at "
                f"{trade.timestamp} is newer than trade_id {self.position[0]}; holding the "
                f"new trades and {check}",
            )
            if self._rest_usable() and self.repair is None:
                self._start(Repair(RepairKind.CHECK, now, start_ms=self.position[1]))
        if len(self.refused) < self.config.max_held:
            index = bisect_left(self.refused, trade.trade_id, key=_trade_id)
            if index == len(self.refused) or self.refused[index].trade_id != trade.trade_id:
                self.refused.insert(index, trade)

    def _rest_usable(self) -> bool:
        return self.config.repair and self.rest_unusable is None

    def _old_sequence_goes_on(self, trade: Trade) -> None:
        """A trade continues the old sequence: the trades that went back were wrong."""
        refused, self.refused = self.refused, []
        self.refused_since = None
        for wrong in refused:
            self._out_of_sequence(wrong, f"the sequence goes on at trade_id {trade.trade_id}")
        if self.repair is not None and self.repair.kind is RepairKind.CHECK:
            self._stop()

    def follow_new_sequence(self, first_id: int, detail: str) -> list[Trade]:
        """The regression is confirmed: the new sequence starts at `first_id` (a gap event
        says so). Returns the trades that went back, to be taken as any live trade."""
        assert self.position is not None
        old_id, old_ms = self.position
        self.out.hole(Hole(self.pair, first_id, old_id, HoleReason.REGRESSION, detail, old_ms))
        self.position = (first_id - 1, old_ms)
        refused, self.refused = self.refused, []
        self.refused_since = None
        self.suspect = None
        return refused

    # --- REST pages ----------------------------------------------------------------------

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
                f"{what} has not advanced for {_duration(age)} (/readyz reports it); Kraken "
                f"REST last said: {repair.last_said}; {len(self.held)} live trades held",
            )
        elif age >= max(FIRST_STALL_WARNING, 2 * repair.warned_after) and not repair.stalled:
            repair.warned_after = age
            self.out.note(
                logging.WARNING,
                f"{what} has not advanced for {_duration(age)}; Kraken REST last said: "
                f"{repair.last_said}; still asking",
            )

    def _follow_without_rest(self, now: float) -> None:
        first = self.refused[0]
        refused = self.follow_new_sequence(
            first.trade_id,
            f"no trade continued the old sequence for {self.config.stale_after:g} s "
            "(no REST to check with)",
        )
        self.live(refused, now)

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

    def _start(self, repair: Repair) -> None:
        self.repair = repair
        self._holes_at_start = self.out.stats.by_pair["holes", self.pair]

    def _stop(self) -> None:
        self.repair = None

    def _advanced(self, now: float) -> None:
        repair = self.repair
        assert repair is not None
        waited = repair.advanced(now)
        if waited is not None:
            self.out.note(
                logging.INFO,
                f"{self.pair}: Kraken REST answers again; the repair goes on after "
                f"{_duration(waited)}",
            )

    # --- outputs -------------------------------------------------------------------------

    def _hole(self, first: int, last: int, reason: HoleReason, detail: str) -> None:
        position = self.position
        after_ms = position[1] if position else None
        self.out.hole(Hole(self.pair, first, last, reason, detail, after_ms))
        if position is None or position[0] < last:
            self.position = (last, after_ms or 0)

    def _out_of_sequence(self, trade: Trade, why: str) -> None:
        self.out.stats.count("out_of_sequence", self.pair)
        self.out.note(
            logging.ERROR,
            f"Dropped {self.pair} trade_id {trade.trade_id} ({trade.timestamp}): out of "
            f"sequence, {why}",
        )

    # --- silent subscriptions ------------------------------------------------------------

    def start_probe(self, now: float) -> None:
        """A resubscribe goes out for this pair: remember where it stood, restart its clock."""
        self.probe = self.position[0] if self.position is not None else -1
        self.heard_at = now

    def _probe_answered(self, last_id: int) -> None:
        since = self.probe
        assert since is not None
        self.probe = None
        stats = self.out.stats
        if last_id <= since:
            stats.probes_quiet += 1
            self.out.note(
                logging.DEBUG,
                f"{self.pair} is only quiet: Kraken has no trade after trade_id {since}",
            )
            return
        stats.probes_newer += 1
        newer = f"{last_id - since} newer trades" if since >= 0 else "trades"
        self.out.note(
            logging.WARNING,
            f"{self.pair}'s subscription had gone silent: Kraken has {newer} (up to trade_id "
            f"{last_id}); publishing them, and fetching from REST any its snapshot lacks",
        )


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
