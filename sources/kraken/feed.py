"""The source's core, sans I/O: live trades, REST pages and the clock in; actions out.

`Feed` owns the per-pair truth (a `Lane` each): the last published trade_id, the one repair
a pair may have, the live trades held behind it. It never touches a socket, a thread or the
broker; the source feeds it and carries out what it asks for:

    feed.receive(trades, now)        live trades from the WebSocket (any pairs, any order)
    feed.page(request_id, ..., now)  the answer to a `Fetch`
    feed.tick(now)                   timers: a page that takes too long, retries, the next fetch,
                                     pairs gone silent
    feed.actions()                   -> Publish / Fetch / CancelFetch / Notice / Hole / HistoryEnded
                                        / Resubscribe

Guarantees, by construction:
- per pair, `Publish` actions carry strictly rising, contiguous trade_ids, except across a
  `Hole`, which is announced first (an ERROR naming the exact range, counted);
- one REST request at a time; the next page goes to the most urgent repair (live gaps before
  history), round-robin among equals, so no pair starves behind a long one; a repair's clock
  starts when its page is requested, never when it was queued;
- held trades are bounded (`max_held` per pair): past it, they are let go and the repair
  chases the present from REST instead, so memory stays bounded and nothing is lost;
- a `Publish` holds at most `message_trades` trades (source-topic messages stay small);
- a failed or stalled page is retried with backoff; only after `repair_attempts` failures
  is the hole final;
- a pair without a live trade for `stale_after` seconds (and no repair) is checked with a
  `Resubscribe`: its snapshot (the last 50 trades) goes through the same path as any live
  trade, so newer trades are published, a leap past the snapshot is repaired from REST for
  just the missing part, and nothing newer means the pair is quiet (checked again after
  another `stale_after`). Kraken is known to let one pair's subscription go silent while
  the connection and the other pairs go on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .lanes import Lane, Repair, RepairKind
from .trade import Trade

__all__ = [
    "Action",
    "CancelFetch",
    "Feed",
    "FeedConfig",
    "FeedStats",
    "Fetch",
    "HistoryEnded",
    "Hole",
    "Notice",
    "Publish",
    "Resubscribe",
]

NS_PER_MS = 1_000_000
SILENCE_CHECK_INTERVAL = 10.0  # most seconds between two looks for silent pairs


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Publish:
    """Write these trades of one pair (contiguous, rising trade_ids) to the source topic."""

    pair: str
    trades: tuple[Trade, ...]
    origin: str  # "ws" (live) or "rest" (repaired or historical)


@dataclass(frozen=True, slots=True)
class Fetch:
    """Ask Kraken REST `Trades` for one page of `pair` after `since_ns`."""

    request_id: int
    pair: str
    since_ns: int
    count: int


@dataclass(frozen=True, slots=True)
class CancelFetch:
    """Give up waiting for that request (its answer, if it comes, is ignored)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Notice:
    """A line for the log."""

    level: int
    message: str


@dataclass(frozen=True, slots=True)
class Hole:
    """Trades `first_id..last_id` of `pair` will never be published (already logged)."""

    pair: str
    first_id: int
    last_id: int
    reason: str
    after_ms: int | None  # time of the last trade published before the hole

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class HistoryEnded:
    """The history (`backfill_since`) of `pair` is over: complete, or given up."""

    pair: str
    complete: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Unsubscribe these pairs and subscribe them again, with a snapshot.

    None of them had a live trade for `stale_after` seconds: the snapshot (each pair's last 50
    trades) tells a quiet pair from a subscription gone silent, without a REST call.
    """

    pairs: tuple[str, ...]


Action = Publish | Fetch | CancelFetch | Notice | Hole | HistoryEnded | Resubscribe


# --- configuration and counters -----------------------------------------------------------


@dataclass(frozen=True)
class FeedConfig:
    """How the core behaves.

    :param pairs: the Kraken v2 symbols; trades of any other symbol are counted and dropped.
    :param repair: whether REST is there to repair gaps (False: gaps are final at once).
    :param max_gap: a trade_id leap larger than this is not repaired; a single such trade
        must be confirmed by its successor, or it is dropped as out of sequence.
    :param max_held: most live trades held per pair behind a repair.
    :param max_held_total: most live trades held over all pairs (hundreds of pairs under
        repair at once); past it, the pair holding most lets go of them (REST brings them).
    :param message_trades: most trades in one `Publish`.
    :param repair_timeout: seconds a REST page may take before that attempt fails.
    :param repair_attempts: failed attempts in a row before a hole is final.
    :param retry_initial: the first retry delay, seconds; it doubles up to `retry_cap`.
    :param page_size: trades per REST page (Kraken's maximum is 1000).
    :param history_since_ns: publish each pair's past from then on (pairs with a position
        resume from it instead).
    :param stale_after: seconds without a live trade of a pair before its subscription is
        checked with a `Resubscribe` (0: never). Pairs are looked at every
        `min(10 s, stale_after / 4)`, so the check goes out after `stale_after` plus at most
        that, and the stale pairs of one look share one request.
    """

    pairs: tuple[str, ...]
    repair: bool = True
    max_gap: int = 50_000
    max_held: int = 100_000
    max_held_total: int = 1_000_000
    message_trades: int = 1000
    repair_timeout: float = 60.0
    repair_attempts: int = 5
    retry_initial: float = 2.0
    retry_cap: float = 60.0
    page_size: int = 1000
    history_since_ns: int | None = None
    stale_after: float = 120.0


@dataclass
class FeedStats:
    """What the core did since it started."""

    published: Counter[str] = field(default_factory=Counter)  # per pair
    from_rest: int = 0
    duplicates: int = 0
    out_of_sequence: int = 0
    unexpected_symbol: int = 0
    gaps: int = 0  # found
    repaired: int = 0  # gaps closed from REST
    holes: int = 0  # final, never published
    missed: int = 0  # trades in those holes
    let_go: int = 0  # held trades let go to bound memory (REST brings them back)
    rest_failures: int = 0
    probes_quiet: int = 0  # silent-subscription checks: nothing newer (or no answer)
    probes_newer: int = 0  # ... that found newer trades: the subscription had gone silent
    # per pair, for metrics: (stat, pair) -> count, for gaps, repaired, holes, missed,
    # from_rest and out_of_sequence (each also counted in its total above)
    by_pair: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, stat: str, pair: str, n: int = 1) -> None:
        """Add `n` to the total `stat` and to its count for `pair`, in step."""
        setattr(self, stat, getattr(self, stat) + n)
        self.by_pair[stat, pair] += n


# --- the core -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Outstanding:
    request_id: int
    pair: str
    sent_at: float


class Feed:
    """Per-pair lanes, their repairs and one REST scheduler; see the module docstring.

    :param config: the behaviour.
    :param positions: pair -> (last published trade_id, its epoch ms), e.g. restored state.
    """

    def __init__(self, config: FeedConfig, positions: Mapping[str, tuple[int, int]] = {}) -> None:
        self.config = config
        self.stats = FeedStats()
        self._lanes = {pair: Lane(pair, positions.get(pair)) for pair in config.pairs}
        self._repairing: dict[str, Lane] = {}
        self._actions: list[Action] = []
        self._outstanding: _Outstanding | None = None
        self._next_request = 0
        self._turns = 0
        self._unknown_symbols: set[str] = set()
        self.history_failed: set[str] = set()
        self._silence_check_at = 0.0
        self._held_total = 0  # live trades held behind repairs, all pairs
        self._schedule_after = 0.0  # no repair can get a page before then (all wait to retry)
        since = config.history_since_ns
        if since is not None and config.repair:
            for lane in self._lanes.values():
                if lane.position is None:
                    self._start(lane, Repair(RepairKind.HISTORY, since, None))

    # --- what the source asks ---------------------------------------------------------

    def actions(self) -> list[Action]:
        """Everything decided since the last call, in order."""
        actions, self._actions = self._actions, []
        return actions

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        """pair -> (last published trade_id, its epoch ms), for pairs that have one."""
        return {p: lane.position for p, lane in self._lanes.items() if lane.position is not None}

    @property
    def repairing(self) -> bool:
        """True while any pair has REST work to do."""
        return bool(self._repairing)

    @property
    def history_pending(self) -> bool:
        """True while any pair's history is still being fetched."""
        return any(lane.repair.kind is RepairKind.HISTORY for lane in self._repairing.values())  # type: ignore[union-attr]

    def held(self) -> int:
        """Live trades held behind repairs, all pairs."""
        return sum(len(lane.held) for lane in self._repairing.values())

    def lane(self, pair: str) -> Lane:
        return self._lanes[pair]

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
            lane.heard_at = now
            if lane.probe is not None:
                self._probe_answered(lane, batch[-1].trade_id)
            self._live(lane, batch, now)

    def page(
        self,
        request_id: int,
        trades: Iterable[Trade],
        last_ns: int,
        now: float,
        *,
        error: str | None = None,
        permanent: bool = False,
    ) -> None:
        """The answer to `Fetch(request_id)`: trades (oldest first) and the next cursor.

        :param error: the request failed (after the REST client's own retries).
        :param permanent: retrying cannot help (e.g. Kraken does not know the pair).
        """
        outstanding = self._outstanding
        if outstanding is None or outstanding.request_id != request_id:
            return  # cancelled meanwhile
        self._outstanding = None
        lane = self._lanes[outstanding.pair]
        repair = lane.repair
        if repair is None:
            return
        if error is not None:
            self._attempt_failed(lane, repair, error, permanent, now)
            return
        repair.attempts = 0
        trades = sorted(trades, key=_trade_id)
        repair.fetched += len(trades)
        reached = self._publish_page(lane, repair, trades)
        caught_up = len(trades) < self.config.page_size or last_ns <= repair.since_ns
        repair.since_ns = max(repair.since_ns, last_ns)
        if reached or (caught_up and repair.until_id is None):
            self._finish(lane, repair, now)
        elif caught_up:  # Kraken REST does not serve the end of the gap (yet): try again
            position = lane.position
            after = position[0] if position else repair.first_missing
            error = f"Kraken REST has nothing after trade_id {after} yet"
            self._attempt_failed(lane, repair, error, False, now)
        self._schedule(now)

    def tick(self, now: float) -> None:
        """Let time pass: check for silent pairs, fail a page that takes too long, start the
        next one."""
        self._check_silence(now)
        outstanding = self._outstanding
        if outstanding is not None:
            if now - outstanding.sent_at < self.config.repair_timeout:
                return
            self._outstanding = None
            self._actions.append(CancelFetch(outstanding.request_id))
            lane = self._lanes[outstanding.pair]
            if lane.repair is not None:
                error = f"no answer within {self.config.repair_timeout:g} s (repair_timeout)"
                self._attempt_failed(lane, lane.repair, error, False, now)
        self._schedule(now)

    def probes_not_sent(self, pairs: Iterable[str]) -> None:
        """The `Resubscribe` of these pairs could not go out (no open connection holds them):
        forget it; the next connection's snapshot comes anyway, and they are checked again
        after another `stale_after` (so a reconnect's snapshot is not taken for an answer)."""
        for pair in pairs:
            lane = self._lanes.get(pair)
            if lane is not None:
                lane.probe = None

    # --- live trades ------------------------------------------------------------------

    def _live(self, lane: Lane, trades: list[Trade], now: float) -> None:
        """Publish what continues the lane's sequence; hold, repair or reject the rest."""
        fresh: list[Trade] = []
        position = lane.position
        max_gap = self.config.max_gap
        for trade in trades:
            if lane.repair is not None:
                if lane.repair.chasing:
                    self.stats.let_go += 1  # REST brings it
                elif lane.hold(trade):
                    self._held_total += 1
                    if len(lane.held) > self.config.max_held:
                        self._let_go(lane, lane.repair, f"max_held ({self.config.max_held})")
                    elif self._held_total > self.config.max_held_total:
                        self._let_go_most()
                else:
                    self.stats.duplicates += 1
                continue
            trade_id = trade.trade_id
            if position is None:  # the first trade the pipeline sees of this pair
                fresh.append(trade)
                position = (trade_id, trade.timestamp_ms)
                continue
            last_id = position[0]
            if trade_id == last_id + 1:
                if lane.suspect is not None:
                    self._drop_suspect(lane)
                fresh.append(trade)
                position = (trade_id, trade.timestamp_ms)
                continue
            if trade_id <= last_id:
                if trade.timestamp_ms > position[1]:
                    self._out_of_sequence(lane, trade, f"after trade_id {last_id}, yet newer")
                else:
                    self.stats.duplicates += 1  # a replay, e.g. the snapshot after a reconnect
                continue
            # a leap: trades last_id+1 .. trade_id-1 are missing
            self._flush(lane, fresh, position)
            fresh = []
            if trade_id - last_id - 1 > max_gap:
                suspect = lane.suspect
                if suspect is None or trade_id != suspect.trade_id + 1:
                    if suspect is not None:
                        self._drop_suspect(lane)
                    lane.suspect = trade  # wait for its successor before believing it
                    continue
                lane.suspect = None
                self._hole(lane, last_id + 1, suspect.trade_id - 1, "larger than max_gap")
                fresh = [suspect, trade]
                position = (trade_id, trade.timestamp_ms)
                continue
            if lane.suspect is not None:
                self._drop_suspect(lane)
            if not self.config.repair:
                self._hole(lane, last_id + 1, trade_id - 1, "repair is off")
                fresh.append(trade)
                position = (trade_id, trade.timestamp_ms)
                continue
            self._gap(lane, trade, now)
        self._flush(lane, fresh, position)

    def _flush(
        self, lane: Lane, fresh: list[Trade], position: tuple[int, int] | None, origin: str = "ws"
    ) -> None:
        """Publish `fresh` (contiguous after the lane's position) and move the position."""
        if fresh:
            lane.position = position
            if origin == "rest":
                self.stats.count("from_rest", lane.pair, len(fresh))
            self._publish(lane.pair, fresh, origin)

    def _gap(self, lane: Lane, trade: Trade, now: float) -> None:
        """`trade` leaps past the lane's position: hold it and fetch what is missing."""
        assert lane.position is not None
        last_id, last_ms = lane.position
        first, until = last_id + 1, trade.trade_id - 1
        self.stats.count("gaps", lane.pair)
        self._note(
            logging.WARNING,
            f"Gap in {lane.pair}: trade_id {first}..{until} ({until - first + 1} trades) "
            "missed; fetching them from Kraken REST",
        )
        if lane.hold(trade):
            self._held_total += 1
        self._start(lane, Repair(RepairKind.GAP, (last_ms - 1) * NS_PER_MS, until, first))

    def _drop_suspect(self, lane: Lane) -> None:
        suspect = lane.suspect
        assert suspect is not None
        lane.suspect = None
        self._out_of_sequence(lane, suspect, "a leap beyond max_gap that the next trade denies")

    def _out_of_sequence(self, lane: Lane, trade: Trade, why: str) -> None:
        self.stats.count("out_of_sequence", lane.pair)
        self._note(
            logging.ERROR,
            f"Dropped {lane.pair} trade_id {trade.trade_id} ({trade.timestamp}): out of "
            f"sequence, {why}",
        )

    def _unexpected(self, symbol: str, count: int) -> None:
        self.stats.unexpected_symbol += count
        if symbol not in self._unknown_symbols and len(self._unknown_symbols) < 100:
            self._unknown_symbols.add(symbol)
            self._note(
                logging.WARNING,
                f"Dropped trades of {symbol!r}: not a subscribed pair (counted as unexpected)",
            )

    # --- repairs ----------------------------------------------------------------------

    def _start(self, lane: Lane, repair: Repair) -> None:
        lane.repair = repair
        self._repairing[lane.pair] = lane
        self._schedule_after = 0.0  # a new candidate for the next page

    def _let_go(self, lane: Lane, repair: Repair, bound: str) -> None:
        """Too many held trades: drop them from memory and let REST bring them instead."""
        count = len(lane.held)
        lane.held.clear()
        self._held_total -= count
        repair.until_id = None
        repair.chasing = True
        self.stats.let_go += count
        self._note(
            logging.WARNING,
            f"{lane.pair}: {count} live trades held behind the {repair.describe()} repair "
            f"exceed {bound}; letting them go, the repair now fetches everything up to the "
            "present from REST",
        )

    def _let_go_most(self) -> None:
        """The held trades of all pairs exceed `max_held_total`: the pair holding most lets go."""
        lane = max(self._repairing.values(), key=lambda lane: len(lane.held))
        assert lane.repair is not None
        total = self._held_total
        bound = f"max_held_total ({self.config.max_held_total}, {total} held over all pairs)"
        self._let_go(lane, lane.repair, bound)

    def _publish_page(self, lane: Lane, repair: Repair, trades: list[Trade]) -> bool:
        """Publish a REST page's trades that continue the lane; True once `until_id` is reached."""
        fresh: list[Trade] = []
        position = lane.position
        until = repair.until_id
        reached = False
        for trade in trades:
            trade_id = trade.trade_id
            if position is not None and trade_id <= position[0]:
                continue  # pages overlap: `since` is a time
            if until is not None and trade_id > until:
                reached = True
                break
            if position is not None and trade_id > position[0] + 1:
                self._flush(lane, fresh, position, "rest")
                fresh = []
                self._hole(lane, position[0] + 1, trade_id - 1, "Kraken REST does not have them")
            fresh.append(trade)
            position = (trade_id, trade.timestamp_ms)
        self._flush(lane, fresh, position, "rest")
        return reached or (until is not None and position is not None and position[0] >= until)

    def _finish(self, lane: Lane, repair: Repair, now: float) -> None:
        """The repair is over: close what is still missing, then release the held trades."""
        position = lane.position
        if repair.kind is RepairKind.HISTORY:
            self._note(
                logging.INFO,
                f"History of {lane.pair} complete: {repair.fetched} trades fetched, now at "
                f"trade_id {position[0] if position else None}",
            )
            self._actions.append(HistoryEnded(lane.pair, True, "caught up with the present"))
        else:
            until = repair.until_id
            if until is not None and position is not None and position[0] < until:
                self._hole(lane, position[0] + 1, until, "Kraken REST has no more of them")
            else:
                self.stats.count("repaired", lane.pair)
                self._note(
                    logging.INFO,
                    f"Gap in {lane.pair} ({repair.describe()}) repaired: {repair.fetched} "
                    "trades fetched from Kraken REST",
                )
        self._stop(lane)
        held = lane.release()
        self._held_total -= len(held)
        if held:
            self._live(lane, held, now)

    def _attempt_failed(
        self, lane: Lane, repair: Repair, error: str, permanent: bool, now: float
    ) -> None:
        self.stats.rest_failures += 1
        repair.attempts += 1
        attempts = self.config.repair_attempts
        if not permanent and repair.attempts < attempts:
            delay = min(
                self.config.retry_cap, self.config.retry_initial * 2 ** (repair.attempts - 1)
            )
            repair.retry_at = now + delay
            self._note(
                logging.WARNING,
                f"REST page for {lane.pair} ({repair.describe()}) failed: {error}; "
                f"retry {repair.attempts}/{attempts - 1} in {delay:.0f} s",
            )
            return
        why = error if permanent else f"{error}, {repair.attempts} attempts"
        if repair.kind is RepairKind.HISTORY:
            self.history_failed.add(lane.pair)
            self._note(logging.ERROR, f"History of {lane.pair} given up: {why}")
            self._actions.append(HistoryEnded(lane.pair, False, why))
        else:
            position = lane.position
            first = position[0] + 1 if position else repair.first_missing
            last = repair.until_id
            if last is None and lane.held:
                last = lane.held[0].trade_id - 1
            if first is not None and last is not None and first <= last:
                self._hole(lane, first, last, f"repair given up: {why}")
            else:
                self._note(logging.ERROR, f"Repair of {lane.pair} given up: {why}")
        self._stop(lane)
        held = lane.release()
        self._held_total -= len(held)
        if held:
            self._live(lane, held, now)

    def _stop(self, lane: Lane) -> None:
        lane.repair = None
        self._repairing.pop(lane.pair, None)

    def _schedule(self, now: float) -> None:
        """Send the next page request: the most urgent repair, the least recently served.

        Least recently served (`Lane.turn`) among repairs of the same kind is round-robin:
        with N pairs under repair, each gets a page at least once in N pages, whatever the
        others' lengths (tests/unit/test_many_pairs.py). While every repair waits for a
        retry, the lanes are not scanned again (this runs on every tick) until the first
        retry is due or a new repair starts.
        """
        if self._outstanding is not None or not self._repairing or now < self._schedule_after:
            return
        best: Lane | None = None
        soonest = float("inf")
        for lane in self._repairing.values():
            repair = lane.repair
            assert repair is not None
            if repair.retry_at > now:
                soonest = min(soonest, repair.retry_at)
                continue
            if best is None or (repair.kind, lane.turn) < (best.repair.kind, best.turn):  # type: ignore[union-attr]
                best = lane
        if best is None:
            self._schedule_after = soonest
            return
        self._turns += 1
        best.turn = self._turns
        self._next_request += 1
        self._outstanding = _Outstanding(self._next_request, best.pair, now)
        assert best.repair is not None
        self._actions.append(
            Fetch(self._next_request, best.pair, best.repair.since_ns, self.config.page_size)
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
        self._note(
            logging.INFO,
            f"No trade of {_some(pairs)} for {stale_after:g} s or more: resubscribing with a "
            "snapshot to see whether Kraken has newer trades",
        )
        self._actions.append(Resubscribe(pairs))

    def _probe_answered(self, lane: Lane, last_id: int) -> None:
        """The first live trades since the lane's `Resubscribe`: newer than it stood, or not."""
        since = lane.probe
        assert since is not None
        lane.probe = None
        if last_id <= since:
            self.stats.probes_quiet += 1
            self._note(
                logging.DEBUG,
                f"{lane.pair} is only quiet: Kraken has no trade after trade_id {since}",
            )
            return
        self.stats.probes_newer += 1
        newer = f"{last_id - since} newer trades" if since >= 0 else "trades"
        self._note(
            logging.WARNING,
            f"{lane.pair}'s subscription had gone silent: Kraken has {newer} (up to trade_id "
            f"{last_id}); publishing them, and fetching from REST any its snapshot lacks",
        )

    # --- outputs ----------------------------------------------------------------------

    def _publish(self, pair: str, trades: list[Trade], origin: str) -> None:
        self.stats.published[pair] += len(trades)
        size = self.config.message_trades
        if len(trades) <= size:
            self._actions.append(Publish(pair, tuple(trades), origin))
            return
        for start in range(0, len(trades), size):
            self._actions.append(Publish(pair, tuple(trades[start : start + size]), origin))

    def _hole(self, lane: Lane, first: int, last: int, reason: str) -> None:
        """Trades first..last of the lane are given up for good: say so, count them."""
        position = lane.position
        after_ms = position[1] if position else None
        hole = Hole(lane.pair, first, last, reason, after_ms)
        if position is None or position[0] < last:  # the sequence goes on after the hole
            lane.position = (last, after_ms or 0)
        self.stats.count("holes", lane.pair)
        self.stats.count("missed", lane.pair, hole.size)
        self._note(
            logging.ERROR,
            f"Gap in {lane.pair}: trade_id {first}..{last} ({hole.size} trades) missed and "
            f"not repaired ({reason})",
        )
        self._actions.append(hole)

    def _note(self, level: int, message: str) -> None:
        self._actions.append(Notice(level, message))


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _some(pairs: tuple[str, ...], shown: int = 10) -> str:
    """`A, B and 3 more pairs`: a list short enough for a log line."""
    if len(pairs) <= shown:
        return ", ".join(pairs)
    return f"{', '.join(pairs[:shown])} and {len(pairs) - shown} more pairs"
