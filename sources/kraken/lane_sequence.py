"""A lane's checks of its sequence: a far leap that waits for the next trade to agree, and
trade_ids that go back (see `lanes` for the whole machine)."""

from __future__ import annotations

import logging
from bisect import bisect_left

from .actions import Hole, HoleReason
from .lane_state import LaneState, trade_id_of
from .repairs import Repair, RepairKind
from .trade import Trade

__all__ = ["LaneSequence"]


class LaneSequence(LaneState):
    """The part of a lane that decides which sequence its trades belong to."""

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
            index = bisect_left(self.refused, trade.trade_id, key=trade_id_of)
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

    def _follow_without_rest(self, now: float) -> None:
        first = self.refused[0]
        refused = self.follow_new_sequence(
            first.trade_id,
            f"no trade continued the old sequence for {self.config.stale_after:g} s "
            "(no REST to check with)",
        )
        self.live(refused, now)
