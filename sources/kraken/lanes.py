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

from .actions import HoleReason
from .lane_repair import LaneRepair
from .lane_sequence import LaneSequence
from .lane_state import duration, trade_id_of
from .repairs import Repair, RepairKind
from .trade import Trade

__all__ = ["LEAP_TO_CONFIRM", "Lane", "Repair", "RepairKind"]

LEAP_TO_CONFIRM = 1000  # a leap over more missing trades waits for the next trade to agree
SECONDS_PER_PAGE_FLOOR = 1.0


class Lane(LaneRepair, LaneSequence):
    """The state machine of one pair (see the module docstring); its parts: `LaneState`
    (state and shared steps), `LaneRepair` (REST answers, waits, the end of a repair),
    `LaneSequence` (far leaps, trade_ids that go back), and here the live trades.

    :param pair: the Kraken v2 symbol.
    :param position: (trade_id, timestamp_ms) of the last trade accounted for (published,
        or in a hole), None before any.
    :param config: the core's settings.
    :param out: where its actions go.
    """

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
        plain = self._plain()
        for trade in trades:
            if plain and pos is not None and trade.trade_id == pos[0] + 1:
                fresh.append(trade)  # the usual case: it continues the sequence
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
            plain = self._plain()
        if fresh:
            self._publish_live(fresh, pos)

    def _plain(self) -> bool:
        """No repair, no far leap waiting, no trade_ids that went back: a trade that continues
        the position is simply published."""
        return self.repair is None and self.suspect is None and not self.refused

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
        return f" (about {pages} pages: {duration(seconds)} at the REST budget)"

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
            index = bisect_left(held, tid, key=trade_id_of)
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
