"""What runs in the source's process: the core, its REST fetcher, its publisher, its timers.

    ConnectionGroup (frames -> trades) ─┐
                                        ├─> Feed (per-pair lanes) ─> Publish / Hole ─> Publisher
    PageFetcher (REST pages) ───────────┘                          ─> Fetch / CancelFetch

`Engine.pump` is one turn: REST answers and the clock into the core, the core's actions
carried out, then the housekeeping that is due (metrics, checkpoint, summary, progress).
Everything about sequencing and repairs is decided in `feed.Feed`; this module only moves
data between it and the outside. Metrics go through `MetricsSink`, an interface this package
defines (`sources.observability` implements it), so the connector depends on no metric
library.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .actions import BackfillEnded, CancelFetch, Fetch, Hole, Notice, Publish, Resubscribe
from .config import SourceConfig
from .connections import ConnectionGroup
from .feed import Feed
from .fetcher import PageFetcher, PageRequest
from .positions import Position
from .progress import Progress
from .progress_view import ProgressView, progress_view
from .publish import Publisher
from .rest import KrakenRest
from .session import SessionStats

__all__ = ["Engine", "MetricsSink", "summary_line"]

logger = logging.getLogger(__name__)

READ_TIMEOUT = 1.0  # seconds: how often the live loop looks at `running` when all is quiet
READ_TIMEOUT_REPAIRING = 0.05  # while REST pages come in, act on them promptly
CHECKPOINT_INTERVAL = 1.0  # seconds between two commits of the published positions
SUMMARY_PAIRS = 20  # most pairs named one by one in the summary line


class MetricsSink(Protocol):
    """Where the source's counters go (`sources.observability.sync.SourceMetrics`)."""

    due: float  # monotonic time of the next `sync`

    def observe_publish(self, timestamp_ms: int) -> None: ...

    def sync(self, now: float, **sources: Any) -> None: ...


class Engine:
    """The source's process, built once it has its state (see the module docstring).

    :param config: the source's settings.
    :param positions: where each pair starts (saved, or from the output topic).
    :param publisher: writes the core's output.
    :param metrics: the metrics, or None when they are off.
    :param fetcher: what asks Kraken's REST API (default: a `PageFetcher` on `rest_url`).
    """

    def __init__(
        self,
        config: SourceConfig,
        positions: Mapping[str, Position],
        publisher: Publisher,
        metrics: MetricsSink | None = None,
        fetcher: PageFetcher | None = None,
    ) -> None:
        self.config = config
        self.feed = Feed(config.feed(), positions)
        self.publisher = publisher
        self.metrics = metrics
        if metrics is not None:
            publisher.on_live = metrics.observe_publish
        self.session_stats = SessionStats()
        self.group: ConnectionGroup | None = None  # the WebSocket connections (live mode)
        self.bad_rows = 0
        self.fetcher = fetcher
        if fetcher is None and config.rest_url:  # one attempt a request: the core waits, asks
            # again and reports long waits
            rest = KrakenRest(
                config.rest_url,
                min_interval=config.rest_min_interval,
                max_attempts=1,
                max_body=config.max_body,
            )
            self.fetcher = PageFetcher(rest).start()
        self.progress = Progress()
        since_ns = config.backfill_since_ns
        for pair in config.pairs if since_ns is not None else ():
            if pair not in positions:  # as in Feed: a pair with a position resumes from it
                self.progress.start(pair, since_ns // 1_000_000, now=time.time())
        self.progress_view: ProgressView = progress_view(self.progress)
        self._next_checkpoint = 0.0
        self._next_summary = time.monotonic() + config.stats_interval

    # --- the loops ------------------------------------------------------------------------

    def run_live(self, running: Callable[[], bool]) -> None:
        """Read every connection of the group, feed the core, carry out its actions."""
        config = self.config
        group = self.group = ConnectionGroup(
            config, stats=self.session_stats, idle_wait=self.wait_for_pages
        )
        pairs = config.pairs
        listed = ", ".join(pairs) if len(pairs) <= 20 else f"{len(pairs)} pairs"
        spread = f" on {group.connections} connections" if group.connections > 1 else ""
        logger.info("Streaming trades of %s from %s%s", listed, config.ws_url, spread)
        feed = self.feed
        try:
            while running():
                trades = group.read(READ_TIMEOUT_REPAIRING if feed.repairing else READ_TIMEOUT)
                now = time.monotonic()
                if trades:
                    feed.receive(trades, now)
                self.pump(now)
        finally:
            group.close()

    def idle(self, seconds: float, running: Callable[[], bool]) -> None:
        """Wait `seconds`, acting on REST pages meanwhile."""
        deadline = time.monotonic() + seconds
        while running() and (remaining := deadline - time.monotonic()) > 0:
            self.wait_for_pages(min(remaining, 0.2))
            self.pump(time.monotonic())

    def wait_for_pages(self, seconds: float) -> None:
        """Wait up to `seconds`, waking early when a REST page arrives."""
        if self.fetcher is not None:
            self.fetcher.wait(seconds)
        else:
            time.sleep(seconds)

    # --- one turn -------------------------------------------------------------------------

    def pump(self, now: float) -> None:
        """REST answers and the clock in; carry out what the core decided; housekeeping."""
        feed, fetcher = self.feed, self.fetcher
        if fetcher is not None:
            for result in fetcher.results():
                self.bad_rows += len(result.bad_rows)
                feed.page(
                    result.request_id,
                    result.rows,
                    result.last_ns,
                    now,
                    error=result.error,
                    failure=result.failure,
                )
        feed.tick(now)
        self._carry_out(feed.actions())
        self.publisher.end_of_round()
        self.progress_view.report(time.time())
        self._housekeeping(now)

    def _carry_out(self, actions: list) -> None:
        publisher, fetcher, progress = self.publisher, self.fetcher, self.progress
        for action in actions:
            if isinstance(action, Publish):
                publisher.trades(action)
                if action.origin == "rest":  # a backfill or a repair moves on
                    trades = action.trades
                    progress.advance(
                        action.pair,
                        trades[-1].timestamp_ms,
                        len(trades),
                        time.time(),
                        first_ms=trades[0].timestamp_ms,
                    )
                else:  # a live trade ends it
                    progress.finish(action.pair)
            elif isinstance(action, Notice):
                logger.log(action.level, action.message)
            elif isinstance(action, Fetch) and fetcher is not None:
                fetcher.submit(
                    PageRequest(action.request_id, action.pair, action.since_ns, action.count)
                )
            elif isinstance(action, CancelFetch) and fetcher is not None:
                fetcher.cancel()
            elif isinstance(action, Resubscribe):
                self._resubscribe(action.pairs)
            elif isinstance(action, Hole):  # logged by its Notice; a gap event for the topic
                publisher.hole(action, time.time_ns() // 1_000_000)
            elif isinstance(action, BackfillEnded):  # logged by its Notice
                progress.finish(action.pair)

    def _housekeeping(self, now: float) -> None:
        metrics = self.metrics
        if metrics is not None and now >= metrics.due:
            self.sync_metrics(now)
        if now >= self._next_checkpoint:
            self.checkpoint()
            self._next_checkpoint = now + CHECKPOINT_INTERVAL
        if now >= self._next_summary:
            self._next_summary = now + self.config.stats_interval
            logger.info("Summary: %s", self.summary())

    def _resubscribe(self, pairs: tuple[str, ...]) -> None:
        """Resubscribe `pairs`, with a snapshot, on the connection that holds them.

        Pairs no open connection has subscribed are left to the next connection, which
        subscribes them with a snapshot anyway; the core forgets their check, so that
        snapshot is not taken for its answer.
        """
        group = self.group
        sessions = group.sessions if group is not None else ()
        subscribed = set().union(*(session.subscribed for session in sessions))
        unsent = [pair for pair in pairs if pair not in subscribed]
        if unsent:
            self.feed.probes_not_sent(unsent)
        if group is not None and len(unsent) < len(pairs):
            group.resubscribe([pair for pair in pairs if pair in subscribed])

    # --- what the source asks -------------------------------------------------------------

    def checkpoint(self) -> None:
        """Deliver what was produced, then record the positions it reached."""
        self.publisher.checkpoint(self.feed.positions)

    def sync_metrics(self, now: float) -> None:
        """Copy the counters into the metrics (see `observability.sync`)."""
        if self.metrics is None:
            return
        fetcher, group = self.fetcher, self.group
        self.metrics.sync(
            now,
            feed=self.feed,
            session_stats=self.session_stats,
            bad_rest_rows=self.bad_rows,
            rest=fetcher.rest if fetcher is not None else None,
            sessions=group.sessions if group is not None else (),
            left_out=group.left_out if group is not None else (),
        )

    def summary(self) -> str:
        return summary_line(self.feed, self.session_stats, self.bad_rows)

    def close(self) -> None:
        """Stop the fetcher and the progress display; the last summary and metrics."""
        self.progress_view.close()
        if self.fetcher is not None:
            self.fetcher.stop()
        logger.info("Stopped. %s", self.summary())
        self.sync_metrics(time.monotonic())


def summary_line(feed: Feed, session: SessionStats, bad_rest_rows: int) -> str:
    """One line: trades per pair, then the other counters."""
    stats = feed.stats
    published = stats.published
    if len(published) <= SUMMARY_PAIRS:
        per_pair = " ".join(f"{pair}={n}" for pair, n in sorted(published.items()))
    else:  # hundreds of pairs: the busiest few (/metrics has every pair)
        busiest = sorted(published.items(), key=lambda item: -item[1])[:SUMMARY_PAIRS]
        listed = " ".join(f"{pair}={n}" for pair, n in busiest)
        per_pair = f"{len(published)} pairs, busiest {listed} ..."
    return (
        f"trades: {per_pair or 'none'} | total={sum(published.values())} "
        f"duplicates_dropped={stats.duplicates} malformed={session.malformed} "
        f"reconnects={session.reconnects} gaps={stats.gaps} repaired={stats.repaired} "
        f"unrepaired={stats.holes} missed={stats.missed} from_rest={stats.from_rest} "
        f"held={feed.held()} out_of_sequence={stats.out_of_sequence} "
        f"unexpected_symbol={stats.unexpected_symbol} bad_rest_rows={bad_rest_rows} "
        f"rest_failures={stats.rest_failures} stale_probes_quiet={stats.probes_quiet} "
        f"stale_probes_newer={stats.probes_newer}"
    )
