"""The source's core, sans I/O: live trades, REST answers and the clock in; actions out.

`Feed` routes each input to its pair's `lanes.Lane` (which owns the pair's state machine and
its two invariants: a hole only with proof, never a received trade lost), schedules the REST
requests of all lanes, and keeps the timers. It never touches a socket, a thread or the
broker; the source feeds it and carries out what it asks for:

    feed.receive(trades, now)        live trades from the WebSocket (any pairs, any order)
    feed.page(request_id, ..., now)  the answer to a `Fetch` (rows, or what went wrong)
    feed.tick(now)                   timers: a page that takes too long, the next request,
                                     waits that grow (escalated), pairs gone silent
    feed.actions()                   -> Publish / Hole / Fetch / CancelFetch / Notice /
                                        BackfillEnded / Resubscribe

Scheduling, by construction:
- one REST request at a time; the next goes to the most urgent lane (a regression check,
  then gaps with live trades held, then histories), round-robin among equals, so no pair
  starves behind a long one; a request's clock starts when it is sent, never when queued;
- held trades are bounded per pair (`max_held`) and in memory over all pairs
  (`max_held_bytes`): past a bound, a lane lets its held trades go and REST brings them;
- a `Publish` holds at most `message_trades` trades (source-topic messages stay small);
- a pair without a live trade for `stale_after` seconds (and no repair) is checked with a
  `Resubscribe`: its snapshot (the last 50 trades) goes through the same path as any live
  trade. Kraken is known to let one pair's subscription go silent while the connection and
  the other pairs go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .actions import (
    Action,
    BackfillEnded,
    CancelFetch,
    FeedStats,
    Fetch,
    Hole,
    HoleReason,
    Notice,
    Outbox,
    Publish,
    RestFailure,
    Resubscribe,
)
from .config import HELD_TRADE_BYTES, FeedConfig
from .lanes import Lane
from .repairs import Repair, RepairKind
from .rows import BadRow
from .trade import Trade

__all__ = [
    "HELD_TRADE_BYTES",
    "Action",
    "BackfillEnded",
    "CancelFetch",
    "Feed",
    "FeedConfig",
    "FeedStats",
    "Fetch",
    "Hole",
    "HoleReason",
    "Notice",
    "Publish",
    "RestFailure",
    "Resubscribe",
]

SILENCE_CHECK_INTERVAL = 10.0  # most seconds between two looks for silent pairs
STALL_CHECK_INTERVAL = 1.0  # seconds between two looks at waits that grow


@dataclass(slots=True)
class _Outstanding:
    request_id: int
    pair: str
    since_ns: int
    sent_at: float


class Feed:
    """Per-pair lanes and one REST scheduler; see the module docstring.

    :param config: the behaviour.
    :param positions: pair -> (last published trade_id, its epoch ms): restored state, or
        the last trade already written of pairs without one.
    """

    def __init__(self, config: FeedConfig, positions: Mapping[str, tuple[int, int]] = {}) -> None:
        self.config = config
        self.out = Outbox(config.message_trades)
        self.stats = self.out.stats
        self._lanes = {
            pair: Lane(pair, positions.get(pair), config, self.out) for pair in config.pairs
        }
        self._outstanding: _Outstanding | None = None
        self._next_request = 0
        self._turns = 0
        self._unknown_symbols: set[str] = set()
        self._silence_check_at = 0.0
        self._stall_check_at = 0.0
        self._schedule_after = 0.0
        self._held_limit = config.max_held_total
        since = config.backfill_since_ns
        if since is not None and config.repair:
            for lane in self._lanes.values():
                if lane.position is None:
                    lane._start(
                        Repair(
                            RepairKind.BACKFILL,
                            0.0,
                            backfill_since_ns=since,
                            start_ms=since // 1_000_000,
                        )
                    )

    # --- what the source asks ---------------------------------------------------------

    def actions(self) -> list[Action]:
        """Everything decided since the last call, in order."""
        return self.out.take()

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        """pair -> (last accounted trade_id, its epoch ms), for pairs that have one."""
        return {p: lane.position for p, lane in self._lanes.items() if lane.position is not None}

    @property
    def repairing(self) -> bool:
        """True while any pair has REST work to do."""
        return any(lane.repair is not None for lane in self._lanes.values())

    @property
    def backfill_pending(self) -> bool:
        """True while any pair's history is still being fetched."""
        return any(
            lane.repair is not None and lane.repair.kind is RepairKind.BACKFILL
            for lane in self._lanes.values()
        )

    @property
    def backfill_failed(self) -> set[str]:
        """Pairs whose history could not be fetched (Kraken's REST cannot serve them)."""
        return {p for p, lane in self._lanes.items() if lane.rest_unusable is not None}

    def held(self) -> int:
        """Live trades held behind repairs, all pairs."""
        return self.out.held_total

    def lane(self, pair: str) -> Lane:
        return self._lanes[pair]

    def lanes(self) -> Iterable[Lane]:
        return self._lanes.values()

    def unready(self) -> dict[str, str]:
        """pair -> why it makes the pipeline unready (`/readyz`), for pairs that do."""
        found = {}
        for pair, lane in self._lanes.items():
            why = lane.unready()
            if why is not None:
                found[pair] = why
        return found

    # --- inputs -----------------------------------------------------------------------

    def receive(self, trades: Iterable[Trade], now: float) -> None:
        """Live trades, as the WebSocket delivered them."""
        by_pair: dict[str, list[Trade]] = {}
        for trade in trades:
            batch = by_pair.get(trade.symbol)
            if batch is None:
                by_pair[trade.symbol] = [trade]
            else:
                batch.append(trade)
        for pair, batch in by_pair.items():
            lane = self._lanes.get(pair)
            if lane is None:
                self._unexpected(pair, len(batch))
                continue
            if len(batch) > 1:
                batch.sort(key=_trade_id)
            lane.receive(batch, now)
        if self.out.held_total > self._held_limit:
            self._bound_held()
        self._schedule_after = 0.0  # a repair may have started

    def page(
        self,
        request_id: int,
        rows: Sequence[Trade | BadRow],
        last_ns: int,
        now: float,
        *,
        error: str | None = None,
        failure: RestFailure = RestFailure.PASSING,
    ) -> None:
        """The answer to `Fetch(request_id)`: every row Kraken served, in its order (bad
        ones included), and its cursor; or `error` when the request brought no answer."""
        outstanding = self._outstanding
        if outstanding is None or outstanding.request_id != request_id:
            return  # cancelled meanwhile
        self._outstanding = None
        self._schedule_after = 0.0
        lane = self._lanes[outstanding.pair]
        if error is not None and failure is RestFailure.NOT_KRAKEN:
            for each in self._lanes.values():
                each.rest_unusable_now(error, now)
        elif error is not None and failure is RestFailure.UNKNOWN_PAIR:
            lane.rest_unusable_now(error, now)
        elif lane.repair is None:
            pass  # the repair ended meanwhile (e.g. the old sequence went on)
        elif error is not None:
            lane.page_failed(error, now)
        else:
            lane.page(rows, outstanding.since_ns, last_ns, now)
        self._bound_held()
        self._schedule(now)

    def tick(self, now: float) -> None:
        """Let time pass: silent pairs, waits that grow, a request that takes too long, the
        next request."""
        self._check_silence(now)
        if now >= self._stall_check_at:
            self._stall_check_at = now + STALL_CHECK_INTERVAL
            for lane in self._lanes.values():
                if lane.repair is not None or lane.refused:
                    lane.check_stall(now)
            self._schedule_after = 0.0
        outstanding = self._outstanding
        if outstanding is not None:
            if now - outstanding.sent_at < self.config.repair_timeout:
                return
            self._outstanding = None
            self.out.add(CancelFetch(outstanding.request_id))
            self._schedule_after = 0.0
            lane = self._lanes[outstanding.pair]
            if lane.repair is not None:
                timeout = self.config.repair_timeout
                lane.page_failed(f"no answer within {timeout:g} s (repair_timeout)", now)
        self._schedule(now)

    def probes_not_sent(self, pairs: Iterable[str]) -> None:
        """The `Resubscribe` of these pairs could not go out (no open connection holds them):
        forget it; the next connection's snapshot comes anyway, and they are checked again
        after another `stale_after` (so a reconnect's snapshot is not taken for an answer)."""
        for pair in pairs:
            lane = self._lanes.get(pair)
            if lane is not None:
                lane.probe = None

    # --- scheduling -------------------------------------------------------------------

    def _schedule(self, now: float) -> None:
        """Send the next request: the most urgent lane, the least recently served.

        Least recently served (`Lane.turn`) among repairs of the same kind is round-robin:
        with N pairs under repair, each gets a page at least once in N pages, whatever the
        others' lengths (tests/unit/test_many_pairs.py).
        """
        if self._outstanding is not None or now < self._schedule_after:
            return
        best: Lane | None = None
        soonest = float("inf")
        for lane in self._lanes.values():
            repair = lane.repair
            if repair is None:
                continue
            if repair.retry_at > now:
                soonest = min(soonest, repair.retry_at)
                continue
            if best is None or (lane.repair.kind, lane.turn) < (best.repair.kind, best.turn):  # type: ignore[union-attr]
                best = lane
        if best is None:
            self._schedule_after = soonest  # nothing is due before then (unless inputs come)
            return
        self._turns += 1
        best.turn = self._turns
        self._next_request += 1
        since = best.since_ns()
        self._outstanding = _Outstanding(self._next_request, best.pair, since, now)
        self.out.add(Fetch(self._next_request, best.pair, since, self.config.page_size))

    def _bound_held(self) -> None:
        """Past `max_held_bytes` over all pairs, the pair holding most lets its trades go."""
        limit = self._held_limit
        while self.out.held_total > limit:
            lane = max(self._lanes.values(), key=lambda lane: len(lane.held))
            if not lane.held or lane.repair is None:
                return
            total = self.out.held_total
            lane.let_go(
                f"max_held_bytes ({self.config.max_held_bytes // 2**20} MiB: {total} trades "
                "held over all pairs)"
            )

    # --- silent subscriptions ---------------------------------------------------------

    def _check_silence(self, now: float) -> None:
        """Resubscribe (one request) the pairs without a live trade for `stale_after`.

        A pair under repair is not checked (its repair asks REST already); a check that got
        no answer within `stale_after` (a pair that never traded: an empty snapshot; or a
        lost request) counts as quiet and goes out again.
        """
        stale_after = self.config.stale_after
        if stale_after <= 0 or now < self._silence_check_at:
            return
        self._silence_check_at = now + min(SILENCE_CHECK_INTERVAL, stale_after / 4)
        stale: list[Lane] = []
        for lane in self._lanes.values():
            heard_at = lane.heard_at
            if heard_at is None:  # the clock starts at the first tick
                lane.heard_at = now
            elif now - heard_at >= stale_after and lane.repair is None:
                if lane.probe is not None:
                    lane.probe = None
                    self.stats.probes_quiet += 1
                stale.append(lane)
        if not stale:
            return
        for lane in stale:
            lane.start_probe(now)
        pairs = tuple(lane.pair for lane in stale)
        self.out.note(
            logging.INFO,
            f"No trade of {_some(pairs)} for {stale_after:g} s or more: resubscribing with a "
            "snapshot to see whether Kraken has newer trades",
        )
        self.out.add(Resubscribe(pairs))

    def _unexpected(self, symbol: str, count: int) -> None:
        self.stats.unexpected_symbol += count
        if symbol not in self._unknown_symbols and len(self._unknown_symbols) < 100:
            self._unknown_symbols.add(symbol)
            self.out.note(
                logging.WARNING,
                f"Dropped trades of {symbol!r}: not a subscribed pair (counted as unexpected)",
            )


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _some(pairs: tuple[str, ...], shown: int = 10) -> str:
    """`A, B and 3 more pairs`: a list short enough for a log line."""
    if len(pairs) <= shown:
        return ", ".join(pairs)
    return f"{', '.join(pairs[:shown])} and {len(pairs) - shown} more pairs"
