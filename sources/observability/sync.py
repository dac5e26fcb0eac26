"""The Kraken source's metrics: its plain counters copied into Prometheus about once a second.

The source counts what it does in plain integers (`FeedStats`, `SessionStats`, the REST
client's counters), which cost nothing on the hot path. `SourceMetrics.sync`, called from
the loop's housekeeping, adds what each counter gained since the last sync and sets the
gauges; the one per-message cost is `observe_publish` (one histogram observation per
source-topic message of live trades).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..kraken.actions import HoleReason
from ..kraken.repairs import NS_PER_MS, RepairKind
from .metrics import SourceMetricSet

if TYPE_CHECKING:
    from ..kraken.feed import Feed, FeedStats
    from ..kraken.lanes import Lane
    from ..kraken.rest import KrakenRest
    from ..kraken.session import SessionStats

__all__ = ["SYNC_INTERVAL", "SourceMetrics"]

logger = logging.getLogger(__name__)

SYNC_INTERVAL = 1.0  # seconds between two syncs
PROVEN = tuple(reason for reason in HoleReason if reason.proven)


class _Session(Protocol):
    subscribed: set[str]
    connection_id: int | None


class SourceMetrics:
    """Copies the source's counters into a `SourceMetricSet` (one per process).

    :param pairs: the pairs this source streams.
    :param backfill_since_ns: `backfill_since` (epoch ns), for the backfill progress gauge.
    :param metrics: the metric set to write (tests give one with its own registry).
    """

    def __init__(
        self,
        pairs: Iterable[str],
        backfill_since_ns: int | None = None,
        metrics: SourceMetricSet | None = None,
    ) -> None:
        self.pairs = tuple(pairs)
        self.backfill_since_ns = backfill_since_ns
        self.metrics = metrics if metrics is not None else SourceMetricSet()
        self.due = 0.0  # monotonic time of the next sync
        self._counted: dict[tuple[Any, ...], float] = {}  # counter (and labels) -> value synced
        self._gauges: dict[tuple[Any, ...], float] = {}  # gauge (and labels) -> value set
        self._latency = self.metrics.publish_latency
        self._failed = False
        self._unready: dict[str, str] = {}  # pair -> reason shown as 1

    # --- per message ------------------------------------------------------------------

    def observe_publish(self, timestamp_ms: int) -> None:
        """One source-topic message of live trades produced: its newest trade's exchange time
        -> now (negative clock skew counts as 0)."""
        latency = time.time() - timestamp_ms / 1000
        self._latency.observe(latency if latency > 0 else 0.0)

    # --- about once a second ----------------------------------------------------------

    def sync(
        self,
        now: float,
        *,
        feed: Feed,
        session_stats: SessionStats,
        bad_rest_rows: int,
        rest: KrakenRest | None,
        sessions: Iterable[_Session] = (),
        left_out: Collection[str] = (),
    ) -> None:
        """Add what the counters gained since the last sync; set the gauges. A failure is
        logged, never raised: metrics must not stop the trades.

        :param now: monotonic time (schedules the next sync).
        :param feed: the `Feed` (its `stats`, lanes and positions).
        :param session_stats: the WebSocket side's `SessionStats`.
        :param bad_rest_rows: REST rows that could not be read, so far.
        :param rest: the `KrakenRest` client (its call counters), None without REST.
        :param sessions: the WebSocket connections held now; one counts as open once
            Kraken's status message named it.
        :param left_out: pairs of a pattern that Kraken refused: not streamed, not expected.
        """
        self.due = now + SYNC_INTERVAL
        try:
            self._sync(now, feed, session_stats, bad_rest_rows, rest, sessions, left_out)
        except Exception:
            if not self._failed:  # once: a broken metric must not flood the log either
                logger.exception("Could not update the metrics")
            self._failed = True

    def _sync(
        self,
        now: float,
        feed: Feed,
        session_stats: SessionStats,
        bad_rest_rows: int,
        rest: KrakenRest | None,
        sessions: Iterable[_Session],
        left_out: Collection[str],
    ) -> None:
        m = self.metrics
        stats = feed.stats
        self._counters(stats, session_stats, bad_rest_rows, rest)
        wall = time.time()
        history = self.backfill_since_ns
        subscribed: set[str] = set()
        connections = 0
        for session in sessions:
            subscribed |= session.subscribed
            connections += session.connection_id is not None
        wanted = [p for p in self.pairs if p not in left_out]
        self._set(m.pairs_configured, (), len(wanted))
        self._set(m.pairs_subscribed, (), sum(1 for p in wanted if p in subscribed))
        self._set(m.connections_open, (), connections)
        self._set_unready(feed.unready())
        for pair in self.pairs:
            lane = feed.lane(pair)
            self._set(m.held, (pair,), len(lane.held))
            self._set(m.repair_stalled, (pair,), round(lane.stalled_seconds(now), 1))
            self._set(m.pair_subscribed, (pair,), 1 if pair in subscribed else 0)
            position = lane.position
            if position is not None and position[1]:
                seconds = position[1] / 1000
                self._set(m.last_trade_timestamp, (pair,), seconds)
                m.seconds_since_last_trade.labels(pair).set(max(wall - seconds, 0.0))
            if history is not None:
                self._set(m.backfill_progress, (pair,), _progress(lane, history, wall))
        m.heartbeat.set(wall)

    def _counters(
        self, stats: FeedStats, session: SessionStats, bad_rest_rows: int, rest: KrakenRest | None
    ) -> None:
        m = self.metrics
        by_pair: Mapping[tuple[str, str], int] = stats.by_pair
        published: Mapping[str, int] = stats.published
        for pair in self.pairs:
            total = published.get(pair, 0)
            from_rest = by_pair.get(("from_rest", pair), 0)
            self._add(m.published, (pair, "ws"), total - from_rest)
            self._add(m.published, (pair, "rest"), from_rest)
            self._add(m.gaps_found, (pair,), by_pair.get(("gaps", pair), 0))
            self._add(m.gaps_repaired, (pair,), by_pair.get(("repaired", pair), 0))
            self._add(m.regressions, (pair,), by_pair.get(("regressions", pair), 0))
            self._add(m.backfilled, (pair,), from_rest)
            self._add(m.out_of_sequence, (pair,), by_pair.get(("out_of_sequence", pair), 0))
        # each pair shows its proven reasons from the start (at zero), others once they occur
        shown = {(pair, reason) for pair in self.pairs for reason in PROVEN}
        for pair, reason in shown | stats.holes_by_reason.keys():
            holes = stats.holes_by_reason.get((pair, reason), 0)
            self._add(m.gaps_unrepaired, (pair, reason.value), holes)
            self._add(m.missed, (pair, reason.value), stats.missed_by_reason.get((pair, reason), 0))
        self._add(m.duplicates_dropped, ("source",), stats.duplicates)
        self._add(m.malformed, ("ws",), session.malformed)
        self._add(m.malformed, ("rest",), bad_rest_rows)
        self._add(m.reconnects, (), session.reconnects)
        self._add(m.stale_probes, ("quiet",), stats.probes_quiet)
        self._add(m.stale_probes, ("newer",), stats.probes_newer)
        if rest is not None:
            self._add(m.rest_calls, ("ok",), rest.calls_ok)
            self._add(m.rest_calls, ("throttled",), rest.calls_throttled)
            self._add(m.rest_calls, ("error",), rest.calls_failed)

    def _add(self, counter: Any, labels: tuple[str, ...], total: float) -> None:
        """Bring `counter{labels}` up to `total`, the source's own count since it started
        (which never falls); the first sync shows the counter even at zero."""
        key = (id(counter), labels)
        delta = total - self._counted.get(key, 0)
        if delta > 0:
            (counter.labels(*labels) if labels else counter).inc(delta)
            self._counted[key] = total
        elif key not in self._counted:
            (counter.labels(*labels) if labels else counter).inc(0)  # show the zero
            self._counted[key] = total

    def _set_unready(self, unready: Mapping[str, str]) -> None:
        """`pair_unready{pair, reason}`: 1 for each pair's current reason, 0 for a past one."""
        gauge = self.metrics.pair_unready
        for pair, reason in self._unready.items():
            if unready.get(pair) != reason:
                self._set(gauge, (pair, reason), 0)
        for pair, reason in unready.items():
            self._set(gauge, (pair, reason), 1)
        self._unready = dict(unready)

    def _set(self, gauge: Any, labels: tuple[str, ...], value: float) -> None:
        key = (id(gauge), labels)
        if self._gauges.get(key) != value:
            (gauge.labels(*labels) if labels else gauge).set(value)
            self._gauges[key] = value


def _progress(lane: Lane, since_ns: int, wall: float) -> float:
    """How much of the pair's history (from `since_ns` to now) is fetched, 0 to 1."""
    repair = lane.repair
    if repair is None or repair.kind is not RepairKind.BACKFILL:
        return 1.0  # over (or resumed from a saved position: nothing to fetch)
    span = wall * 1e9 - since_ns
    position = lane.position
    if span <= 0:
        return 1.0
    if position is None:
        return 0.0
    return min(max((position[1] * NS_PER_MS - since_ns) / span, 0.0), 1.0)
