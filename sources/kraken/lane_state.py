"""A lane's state, and what every part of it uses (see `lanes` for the whole machine)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .actions import Hole, HoleReason, Outbox
from .repairs import Repair
from .trade import Trade

if TYPE_CHECKING:
    from .config import FeedConfig

__all__ = ["LaneState", "duration", "trade_id_of"]


class LaneState:
    """The state of one pair, and the small steps its parts share.

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

    # --- what the other parts provide ---------------------------------------------------

    def live(self, trades: list[Trade], now: float) -> None:
        """Live trades, in trade_id order (`lanes.Lane`)."""
        raise NotImplementedError

    def _hold(self, trade: Trade, now: float) -> None:
        """Keep a live trade behind the repair (`lanes.Lane`)."""
        raise NotImplementedError

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

    # --- shared steps --------------------------------------------------------------------

    def _publish_live(self, fresh: list[Trade], pos: tuple[int, int] | None) -> None:
        if fresh:
            self.position = pos
            self.out.publish(self.pair, fresh, "ws")

    def _start(self, repair: Repair) -> None:
        self.repair = repair
        self._holes_at_start = self.out.stats.by_pair["holes", self.pair]

    def _stop(self) -> None:
        self.repair = None

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


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def trade_id_of(trade: Trade) -> int:
    """The sort key of held trades."""
    return trade.trade_id
