"""What the core (`feed.Feed` and its `lanes.Lane`s) asks the source to do, and what it counts.

The core is sans I/O: it never writes to a topic, a socket or a log. It appends actions to an
`Outbox`, and the source carries them out in order:

    Publish      write consecutive trades of one pair to the source topic
    Hole         trade_ids that will never be published, and why (`HoleReason`)
    Fetch        ask Kraken REST for one page; CancelFetch: stop waiting for it
    Resubscribe  ask the WebSocket for a fresh snapshot of some pairs
    BackfillEnded a pair's history (`backfill_since`) is over
    Notice       a line for the log
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum, StrEnum

__all__ = [
    "Action",
    "BackfillEnded",
    "CancelFetch",
    "FeedStats",
    "Fetch",
    "Hole",
    "HoleReason",
    "Notice",
    "Outbox",
    "Publish",
    "RestFailure",
    "Resubscribe",
]


class HoleReason(StrEnum):
    """Why trade_ids will never be published: the `reason` of a gap event and a metric label.

    Two are proven by what Kraken's REST API served; the others say that no proof was sought
    (and why), so that a user can tell a loss Kraken confirms from one it might not.
    """

    REST_LACKS = "rest_lacks"
    """Proven: one REST answer served the trade_ids on both sides and none between."""
    UNREADABLE = "unreadable"
    """Proven: REST served these rows, broken, on every re-read."""
    REPAIR_OFF = "repair_off"
    """Not proven: no REST API to repair from (`kraken_rest_url` empty)."""
    REST_UNUSABLE = "rest_unusable"
    """Not proven: Kraken's REST does not know the pair, or `kraken_rest_url` is not Kraken."""
    MAX_GAP = "max_gap"
    """Not proven: larger than the opt-in `max_gap`, so not repaired."""
    REGRESSION = "regression"
    """The pair's trade_ids went back (a relisting or reset): from `first_trade_id` on they
    are written again, as a new sequence; nothing is missing."""
    ABANDONED = "abandoned"
    """Written by versions before 0.2 only (a repair given up after `repair_attempts`)."""

    @property
    def proven(self) -> bool:
        """True when a REST answer shows Kraken does not serve these trades."""
        return self in (HoleReason.REST_LACKS, HoleReason.UNREADABLE)

    @property
    def meaning(self) -> str:
        """One line, as the schema and the docs say it."""
        return _MEANINGS[self]


_MEANINGS = {
    HoleReason.REST_LACKS: "proven: a Kraken REST answer served the trades on both sides, "
    "not these",
    HoleReason.UNREADABLE: "proven: Kraken REST served these rows broken on every re-read",
    HoleReason.REPAIR_OFF: "not proven: no REST API to repair from (kraken_rest_url empty)",
    HoleReason.REST_UNUSABLE: "not proven: Kraken's REST does not know the pair, or "
    "kraken_rest_url is not Kraken's REST API",
    HoleReason.MAX_GAP: "not proven: the gap is larger than the opt-in max_gap",
    HoleReason.REGRESSION: "the pair's trade_ids went back (a relisting or reset): from "
    "first_trade_id on they are written again, as a new sequence",
    HoleReason.ABANDONED: "written by versions before 0.2 only: a repair given up after "
    "repair_attempts failures",
}


class RestFailure(Enum):
    """What a REST request that brought no answer means."""

    PASSING = "passing"  # anything that may pass: a delay, retried
    UNKNOWN_PAIR = "unknown_pair"  # Kraken's REST does not know the pair
    NOT_KRAKEN = "not_kraken"  # the URL is not Kraken's REST API: no pair can be repaired


@dataclass(frozen=True, slots=True)
class Publish:
    """Write these trades of one pair (contiguous, rising trade_ids) to the source topic."""

    pair: str
    trades: tuple  # tuple[Trade, ...]
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
    """Trades `first_id..last_id` of `pair` will never be published (already logged).

    :param after_ms: time of the last trade published before the hole (None: none yet).
    """

    pair: str
    first_id: int
    last_id: int
    reason: HoleReason
    detail: str
    after_ms: int | None

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class BackfillEnded:
    """The history (`backfill_since`) of `pair` is over: complete, or impossible."""

    pair: str
    complete: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Unsubscribe these pairs and subscribe them again, with a snapshot (see `feed`)."""

    pairs: tuple[str, ...]


Action = Publish | Fetch | CancelFetch | Notice | Hole | BackfillEnded | Resubscribe


@dataclass
class FeedStats:
    """What the core did since it started."""

    published: Counter[str] = field(default_factory=Counter)  # per pair
    from_rest: int = 0
    duplicates: int = 0
    out_of_sequence: int = 0
    unexpected_symbol: int = 0
    gaps: int = 0  # found
    repaired: int = 0  # gaps closed from REST with nothing missing
    holes: int = 0  # never published
    missed: int = 0  # trades in those holes
    regressions: int = 0  # a pair's trade_ids went back
    let_go: int = 0  # held trades let go to bound memory (REST brings them back)
    rest_failures: int = 0  # REST answers that brought nothing (errors, lag, re-reads)
    probes_quiet: int = 0  # silent-subscription checks: nothing newer (or no answer)
    probes_newer: int = 0  # ... that found newer trades: the subscription had gone silent
    # per pair, for metrics: (stat, pair) -> count, for gaps, repaired, holes, missed,
    # from_rest, out_of_sequence and regressions (each also counted in its total above)
    by_pair: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (pair, reason) -> holes and trades missed, per `HoleReason`
    holes_by_reason: Counter[tuple[str, HoleReason]] = field(default_factory=Counter)
    missed_by_reason: Counter[tuple[str, HoleReason]] = field(default_factory=Counter)

    def count(self, stat: str, pair: str, n: int = 1) -> None:
        """Add `n` to the total `stat` and to its count for `pair`, in step."""
        setattr(self, stat, getattr(self, stat) + n)
        self.by_pair[stat, pair] += n


class Outbox:
    """The core's actions in order, its counters, and the held-trade total of all lanes.

    :param message_trades: most trades in one `Publish`.
    """

    def __init__(self, message_trades: int = 1000) -> None:
        self.message_trades = message_trades
        self.stats = FeedStats()
        self.held_total = 0  # live trades held in memory, all lanes
        self._actions: list[Action] = []

    def take(self) -> list[Action]:
        """Everything decided since the last call, in order."""
        actions, self._actions = self._actions, []
        return actions

    def add(self, action: Action) -> None:
        self._actions.append(action)

    def note(self, level: int, message: str) -> None:
        self._actions.append(Notice(level, message))

    def publish(self, pair: str, trades: list, origin: str) -> None:
        """Publish `trades` (contiguous, after the pair's position), `message_trades` a time."""
        stats = self.stats
        stats.published[pair] += len(trades)
        if origin == "rest":
            stats.count("from_rest", pair, len(trades))
        size = self.message_trades
        if len(trades) <= size:
            self._actions.append(Publish(pair, tuple(trades), origin))
            return
        for start in range(0, len(trades), size):
            self._actions.append(Publish(pair, tuple(trades[start : start + size]), origin))

    def hole(self, hole: Hole) -> None:
        """Announce a hole: an ERROR (a WARNING for a regression, which loses nothing)."""
        stats = self.stats
        pair, reason = hole.pair, hole.reason
        if reason is HoleReason.REGRESSION:
            self.note(
                logging.WARNING,
                f"{pair}: trade_ids went back; following the new sequence from trade_id "
                f"{hole.first_id} ({hole.detail})",
            )
        else:
            stats.count("holes", pair)
            stats.count("missed", pair, hole.size)
            stats.holes_by_reason[pair, reason] += 1
            stats.missed_by_reason[pair, reason] += hole.size
            self.note(
                logging.ERROR,
                f"Gap in {pair}: trade_id {hole.first_id}..{hole.last_id} ({hole.size} "
                f"trades) will never be published: {reason.value} ({hole.detail})",
            )
        self._actions.append(hole)
