"""`KrakenTradesSource`: lifecycle and wiring of the WebSocket, the REST fetcher and the core.

    ConnectionGroup (KrakenSessions: frames -> trades) ─┐
                                                        ├─> Feed (per-pair lanes) ─> Publish
    PageFetcher (REST pages) ───────────────────────────┘                          ─> Fetch

Everything about sequencing, repairs and their scheduling is decided in `feed.Feed`, which
tests drive without any I/O; this module only moves data between it and the outside.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Collection, Iterable

from quixstreams.models.topics import Topic
from quixstreams.sources import StatefulSource

from ..app.topics import SOURCE_TOPIC
from ..observability import source_metrics
from .config import has_patterns, parse_pairs
from .connections import CONNECT_SPACING, ConnectionGroup
from .feed import (
    CancelFetch,
    Feed,
    FeedConfig,
    Fetch,
    HistoryEnded,
    Hole,
    Notice,
    Publish,
    Resubscribe,
)
from .fetcher import PageFetcher, PageRequest
from .gaps import GapEvents
from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_MESSAGE
from .positions import Position, restore_positions, save_positions, starting_positions
from .progress import Progress
from .progress_view import ProgressLog, ProgressView, progress_view
from .rest import KrakenRest
from .session import ConnectionLost, SessionStats, SubscriptionRejected

__all__ = [
    "END_OF_BACKFILL_HEADER",
    "HISTORY_OUTCOMES",
    "ConnectionLost",
    "KrakenTradesSource",
    "SubscriptionRejected",
]

logger = logging.getLogger(__name__)

# The source topic's settings (one partition, 7 days' retention) live with the other topics'.
SOURCE_TOPIC_CONFIG = SOURCE_TOPIC
READ_TIMEOUT = 1.0  # seconds: how often the loop looks at `self.running` when all is quiet
READ_TIMEOUT_REPAIRING = 0.05  # while REST pages come in, act on them promptly
CHECKPOINT_INTERVAL = 1.0  # seconds between two commits of the published positions
END_OF_BACKFILL_HEADER = "kraken-trades-end-of-backfill"
# `backfill_only`: how the history ended, the end marker's header value (read by the app)
HISTORY_OUTCOMES = ("complete", "deadline", "rest_unusable")
SUMMARY_PAIRS = 20  # most pairs named one by one in the summary line
# The source's producer: not idempotent, one request in flight. Quix Streams makes every
# producer idempotent; librdkafka (<= 2.15) then busy-polls its broker thread whenever five
# messages of a partition are in flight, i.e. whenever a round trip outlasts linger.ms (a slow
# or loaded broker): CPU that grows with the broker's latency. Without idempotence, one
# request in flight keeps the order across retries, and the duplicates a retry may write are
# dropped by the dataframe's dedupe step. (Quix never makes a source's producer
# transactional, so this holds in both processing modes.)
SOURCE_PRODUCER_CONFIG = {"enable.idempotence": False, "max.in.flight.requests.per.connection": 1}


class KrakenTradesSource(StatefulSource):
    """Every trade of `pairs` from Kraken's WebSocket API v2, once, in trade_id order.

    Each message of the source topic holds consecutive trades of one pair (a JSON list of
    Kraken v2 trade objects with `timestamp_ms` and `origin`, ws or rest, added), keyed by
    the pair; a trade_id range that will never be published is a gap event (a JSON object,
    `gaps.gap_event`), written just before the pair's next trades. Trades Kraken
    sends again (the snapshot after a reconnect) are dropped; trades it skipped are fetched
    from its REST `Trades` endpoint and published first, while that pair's live trades wait
    (other pairs flow on). Each pair's position is kept in the source's state, so a
    restarted pipeline repairs what happened while it was down.

    It reconnects on close, error or silence, with a backoff that keeps growing until a
    connection has stayed healthy for `healthy_after` seconds. It raises only on a fatal
    error: a pair Kraken never accepted.
    """

    def __init__(
        self,
        pairs: Iterable[str],
        *,
        name: str = "kraken-trades",
        ws_url: str = "wss://ws.kraken.com/v2",
        snapshot: bool = True,
        heartbeat_timeout: float = 10.0,
        stats_interval: float = 30.0,
        connect_timeout: float = 10.0,
        max_backoff: float = 60.0,
        healthy_after: float = 30.0,
        rest_url: str | None = "https://api.kraken.com",
        rest_min_interval: float = 1.0,
        backfill_since_ns: int | None = None,
        backfill_only: bool = False,
        max_gap: int = 0,
        max_held: int = 100_000,
        max_held_bytes: int = 128 * 1024 * 1024,
        repair_timeout: float = 60.0,
        backfill_deadline: float | None = None,
        start_positions: dict[str, Position] | None = None,
        shutdown_timeout: float = 10.0,
        stale_after: float | None = 120.0,
        decimal_strings: bool = False,
        max_pairs_per_connection: int = 100,
        subscribe_batch: int = 50,
        optional_pairs: Collection[str] = (),
        connect_spacing: float = CONNECT_SPACING,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        """
        :param pairs: Kraken v2 symbols (`BTC/USD`), patterns already resolved (see
            `instruments.resolve_pairs`); validated here, so a typo fails at once.
        :param name: the source name; Quix Streams names the source topic `source__<name>`.
        :param ws_url: the WebSocket endpoint.
        :param snapshot: ask for the last 50 trades per pair on every (re)subscribe.
        :param heartbeat_timeout: seconds without any message before the connection is dropped.
        :param stats_interval: seconds between two summary lines in the log.
        :param connect_timeout: seconds allowed for the TCP + TLS + WebSocket handshake.
        :param max_backoff: the cap of the reconnect delay, seconds.
        :param healthy_after: seconds a connection must last before the backoff starts over.
        :param rest_url: Kraken's REST API, used to repair gaps; None turns repair off.
        :param rest_min_interval: seconds between two REST calls (Kraken allows about 1/s).
        :param backfill_since_ns: also publish each pair's history from this time (epoch ns)
            on, before its live trades; a pair with a saved position resumes from it instead.
        :param backfill_only: publish the history up to now, then stop (no WebSocket).
        :param max_gap: opt-in cap: a gap of more trades is not repaired but reported (0: any
            gap is repaired).
        :param max_held: most live trades held per pair behind a repair (see `feed`).
        :param max_held_bytes: most memory for held live trades over all pairs.
        :param repair_timeout: seconds a REST page may take before that attempt fails (and is
            asked again: a repair never gives up on its own).
        :param backfill_deadline: `backfill_only`: seconds the history may take; past them
            the run ends (exit code 4), saying where each pair stopped.
        :param start_positions: pair -> (last trade_id, its epoch ms) in the output topic,
            for pairs without a saved position (a new state, group or shard count): they
            repair from there instead of taking their first live trade on faith.
        :param shutdown_timeout: seconds the application waits for the source to stop.
        :param stale_after: seconds without a live trade of a pair before its subscription is
            checked by resubscribing with a snapshot (see `feed`); 0 or None: never.
        :param decimal_strings: write price and qty as Kraken's exact decimal strings
            instead of numbers (WebSocket frames are then read by Python's JSON reader).
        :param max_pairs_per_connection: most pairs on one WebSocket connection; more pairs
            are spread over several (see `connections`).
        :param subscribe_batch: most symbols in one subscribe request.
        :param optional_pairs: pairs that came from `all` or a pattern: one Kraken refuses is
            logged and left out; a refused pair named explicitly stops the source.
        :param connect_spacing: seconds between two connection attempts, at least (Kraken
            limits how often one address connects; shards behind one address share it).
        :param max_message: most bytes of one WebSocket message (a longer one: a reconnect).
        :param max_body: most bytes of one REST answer (a longer one: a failed call).
        """
        if isinstance(pairs, str):
            pairs = parse_pairs(pairs)
        self.pairs: tuple[str, ...] = parse_pairs(",".join(pairs))
        if has_patterns(self.pairs):
            raise ValueError("pairs: resolve all and patterns first (instruments.resolve_pairs)")
        if max_pairs_per_connection < 1 or subscribe_batch < 1:
            raise ValueError("max_pairs_per_connection and subscribe_batch must be >= 1")
        self.max_pairs_per_connection = max_pairs_per_connection
        self.subscribe_batch = subscribe_batch
        self.connect_spacing = connect_spacing
        self.optional_pairs = frozenset(optional_pairs) & set(self.pairs)
        if heartbeat_timeout <= 0 or connect_timeout <= 0 or stats_interval <= 0:
            raise ValueError("heartbeat_timeout, connect_timeout and stats_interval must be > 0")
        if backfill_only and backfill_since_ns is None:
            raise ValueError("backfill_only needs backfill_since")
        if (backfill_only or backfill_since_ns is not None) and not rest_url:
            raise ValueError("a backfill needs rest_url")
        self.ws_url = ws_url
        self.snapshot = snapshot
        self.heartbeat_timeout = heartbeat_timeout
        self.stats_interval = stats_interval
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.rest_url = rest_url
        self.rest_min_interval = rest_min_interval
        self.backfill_only = backfill_only
        self.backfill_deadline = backfill_deadline
        self.start_positions = dict(start_positions or {})
        self.decimal_strings = decimal_strings
        self.max_message = max_message
        self.max_body = max_body
        self.feed_config = FeedConfig(
            pairs=self.pairs,
            repair=bool(rest_url),
            max_gap=max_gap,
            max_held=max_held,
            max_held_bytes=max_held_bytes,
            repair_timeout=repair_timeout,
            history_since_ns=backfill_since_ns,
            stale_after=0.0 if backfill_only or not stale_after else stale_after,
            rest_interval=rest_min_interval,
        )
        self._stop_requested = False
        # progress of histories and big repairs: date reached, share done, trades/s, ETA
        self._progress = Progress()
        self._progress_view: ProgressView = ProgressLog(self._progress)
        super().__init__(name=name, shutdown_timeout=shutdown_timeout)

    @property
    def running(self) -> bool:
        """False once stopped, even when the stop came while the state was being recovered
        (Quix Streams sets `_running` only after the recovery)."""
        return self._running and not self._stop_requested

    def stop(self) -> None:
        """Ask the loop to finish (called on SIGTERM/SIGINT in the source's process)."""
        self._stop_requested = True
        super().stop()

    # --- lifecycle ----------------------------------------------------------------------

    def run(self) -> None:
        """Stream (or, with `backfill_only`, fetch the history); return only when stopped."""
        _log_like_quixstreams()
        _release_recovery_consumer()
        _tune_producer(self.producer, SOURCE_PRODUCER_CONFIG)
        saved = restore_positions(self.state, self.pairs)
        positions = starting_positions(saved, self.start_positions)
        self.feed = Feed(self.feed_config, positions)
        since_ns = self.feed_config.history_since_ns
        for pair in self.pairs if since_ns is not None else ():
            if pair not in positions:  # as in Feed: a pair with a position resumes from it
                self._progress.start(pair, since_ns // 1_000_000, now=time.time())
        self._progress_view = progress_view(self._progress)  # a live display on a terminal
        self.session_stats = SessionStats()
        self.bad_rows = 0
        self._saved = dict(self.feed.positions)
        self._next_checkpoint = 0.0
        self._next_summary = time.monotonic() + self.stats_interval
        self.group: ConnectionGroup | None = None  # the WebSocket connections (live mode)
        self._resubscribes = 0
        self._fetcher: PageFetcher | None = None
        self._gaps = GapEvents()
        # Prometheus metrics (None when off): counters synced from the stats about once a second
        self._metrics = source_metrics(self.pairs, self.feed_config.history_since_ns)
        if self.rest_url:
            # one attempt per request: the core waits, asks again and reports long waits
            rest = KrakenRest(
                self.rest_url,
                min_interval=self.rest_min_interval,
                max_attempts=1,
                max_body=self.max_body,
            )
            self._fetcher = PageFetcher(rest).start()
        try:
            if self.backfill_only:
                self._run_history()
            else:
                self._run_live()
        finally:
            self._progress_view.close()
            if self._fetcher is not None:
                self._fetcher.stop()
            logger.info("Stopped. %s", self.summary())
            if self._metrics is not None:
                self._sync_metrics(time.monotonic())
        self._checkpoint()

    def _run_live(self) -> None:
        """Read every connection of the group, feed the core, carry out its actions."""
        pairs = self.pairs
        group = self.group = ConnectionGroup(
            self.ws_url,
            pairs,
            stats=self.session_stats,
            max_pairs_per_connection=self.max_pairs_per_connection,
            subscribe_batch=self.subscribe_batch,
            optional=self.optional_pairs,
            snapshot=self.snapshot,
            exact=self.decimal_strings,
            connect_timeout=self.connect_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            max_backoff=self.max_backoff,
            healthy_after=self.healthy_after,
            connect_spacing=self.connect_spacing,
            idle_wait=self._wait_for_pages,
            max_message=self.max_message,
        )
        listed = ", ".join(pairs) if len(pairs) <= 20 else f"{len(pairs)} pairs"
        spread = f" on {group.connections} connections" if group.connections > 1 else ""
        logger.info("Streaming trades of %s from %s%s", listed, self.ws_url, spread)
        feed = self.feed
        try:
            while self.running:
                trades = group.read(READ_TIMEOUT_REPAIRING if feed.repairing else READ_TIMEOUT)
                now = time.monotonic()
                if trades:
                    feed.receive(trades, now)
                self._pump(now)
        finally:
            group.close()

    def _wait_for_pages(self, seconds: float) -> None:
        """No connection is open: wait, waking early when a REST page arrives."""
        if self._fetcher is not None:
            self._fetcher.wait(seconds)
        else:
            time.sleep(seconds)

    def _run_history(self) -> None:
        """Fetch every pair's history up to now (or the deadline); then mark the end.

        The end marker carries the outcome (`HISTORY_OUTCOMES`); the application stops once
        the dataframe has seen it, so every trade fetched is in the output before the exit
        code says how the history ended.
        """
        logger.info("Backfilling %s up to now, then stopping", ", ".join(self.pairs))
        deadline = self.backfill_deadline
        ends_at = time.monotonic() + deadline if deadline is not None else None
        while self.running and self.feed.history_pending:
            if ends_at is not None and time.monotonic() >= ends_at:
                break
            self._idle(0.2)
        if not self.running:
            return  # stopped midway: no end marker, the app exits non-zero
        self._checkpoint()
        failed = sorted(self.feed.history_failed)
        if self.feed.history_pending:
            outcome = "deadline"
            logger.error(
                "backfill_deadline (%g s) passed before the history was complete; where each "
                "pair stopped: %s",
                deadline,
                self._where_stopped(),
            )
        elif failed:
            outcome = "rest_unusable"
            logger.error(
                "The history of %s is incomplete: Kraken's REST cannot serve it (see above)",
                ", ".join(failed),
            )
        else:
            outcome = "complete"
            logger.info("Backfill complete: %s", self.summary())
        # tells the dataframe that everything before it is all there is (and how it ended)
        message = self.serialize(key="", value=[])
        self.produce(
            key=message.key,
            value=message.value,
            headers=[(END_OF_BACKFILL_HEADER, outcome.encode())],
        )
        self.producer.flush()
        while self.running:  # the application stops once the dataframe saw the marker
            time.sleep(0.2)

    def _where_stopped(self) -> str:
        """`BTC/USD at trade_id 123 (2024-01-02T03:04:05Z), ETH/USD not started`."""
        parts = []
        for pair in self.pairs:
            position = self.feed.lane(pair).position
            if position is None:
                parts.append(f"{pair} not started")
            else:
                moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(position[1] / 1000))
                parts.append(f"{pair} at trade_id {position[0]} ({moment})")
        return ", ".join(parts)

    def _idle(self, seconds: float) -> None:
        """Wait `seconds`, acting on REST pages meanwhile."""
        deadline = time.monotonic() + seconds
        while self.running and (remaining := deadline - time.monotonic()) > 0:
            if self._fetcher is not None:
                self._fetcher.wait(min(remaining, 0.2))
            else:
                time.sleep(min(remaining, 0.2))
            self._pump(time.monotonic())

    # --- moving data between the core and the outside ------------------------------------

    def _pump(self, now: float) -> None:
        """REST pages in, the clock in; carry out what the core decided; housekeeping."""
        feed = self.feed
        fetcher = self._fetcher
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
        gaps = self._gaps
        decimal_strings = self.decimal_strings
        metrics = self._metrics
        progress = self._progress
        for action in feed.actions():
            if isinstance(action, Publish):
                if gaps:  # a hole of this pair waits for the time of its next trade
                    self._produce_gap(gaps.before(action.pair, action.trades[0].timestamp_ms))
                origin = action.origin
                value = [trade.to_message(origin, decimal_strings) for trade in action.trades]
                message = self.serialize(key=action.pair, value=value)
                self.produce(key=message.key, value=message.value)
                if metrics is not None and origin == "ws":  # one observation per message
                    metrics.observe_publish(action.trades[-1].timestamp_ms)
                if origin == "rest":  # a history or a repair moves on; a live trade ends it
                    first, last = action.trades[0].timestamp_ms, action.trades[-1].timestamp_ms
                    progress.advance(action.pair, last, len(value), time.time(), first_ms=first)
                else:
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
                self._produce_gap(gaps.hole(action, time.time_ns() // 1_000_000))
            elif isinstance(action, HistoryEnded):  # logged by its Notice
                progress.finish(action.pair)
        for event in gaps.rest() if gaps else ():  # holes no trade followed in this round
            self._produce_gap(event)
        self._progress_view.report(time.time())
        if metrics is not None and now >= metrics.due:
            self._sync_metrics(now)
        if now >= self._next_checkpoint:
            self._checkpoint()
            self._next_checkpoint = now + CHECKPOINT_INTERVAL
        if now >= self._next_summary:
            self._next_summary = now + self.stats_interval
            logger.info("Summary: %s", self.summary())

    def _produce_gap(self, event: dict | None) -> None:
        """Write a gap event (`gaps.gap_event`) to the source topic, keyed by its pair."""
        if event is not None:
            message = self.serialize(key=event["pair"], value=event)
            self.produce(key=message.key, value=message.value)

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
            self._resubscribes += 1
            group.resubscribe([pair for pair in pairs if pair in subscribed])

    def _sync_metrics(self, now: float) -> None:
        """Copy the counters into the Prometheus metrics (see `observability.sync`)."""
        fetcher, group = self._fetcher, self.group
        self._metrics.sync(  # type: ignore[union-attr]
            now,
            feed=self.feed,
            session_stats=self.session_stats,
            bad_rest_rows=self.bad_rows,
            rest=fetcher.rest if fetcher is not None else None,
            sessions=group.sessions if group is not None else (),
            left_out=group.left_out if group is not None else (),
        )

    def _checkpoint(self) -> None:
        """Deliver what was produced, then record the positions it reached."""
        self.producer.flush()  # trades first, so the state never runs ahead of them
        if save_positions(self.state, self.feed.positions, self._saved):
            self.flush()

    def summary(self) -> str:
        """One line: trades per pair, then the other counters."""
        stats = self.feed.stats
        session = self.session_stats
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
            f"unrepaired={stats.holes} missed={stats.missed} backfilled={stats.from_rest} "
            f"held={self.feed.held()} out_of_sequence={stats.out_of_sequence} "
            f"unexpected_symbol={stats.unexpected_symbol} bad_rest_rows={self.bad_rows} "
            f"rest_failures={stats.rest_failures} stale_probes_quiet={stats.probes_quiet} "
            f"stale_probes_newer={stats.probes_newer}"
        )

    # --- Quix Streams plumbing --------------------------------------------------------

    def default_topic(self) -> Topic:
        """JSON lists of Kraken trades, keyed by pair (string)."""
        return Topic(
            name=self.name,
            key_serializer="string",
            key_deserializer="string",
            value_serializer="json",
            value_deserializer="json",
            create_config=SOURCE_TOPIC_CONFIG,
        )


def _log_like_quixstreams() -> None:
    """In the source's process, send this package's log lines where Quix Streams sends its own."""
    quix = logging.getLogger("quixstreams")
    package = logging.getLogger(__name__.split(".")[0])
    if quix.handlers and not package.handlers and not logging.getLogger().handlers:
        for handler in quix.handlers:
            package.addHandler(handler)
        package.setLevel(quix.level)
        package.propagate = False


def _tune_producer(producer: object, settings: dict[str, object]) -> None:
    """Give this source's producer its own settings before it connects.

    Quix Streams (3.28) builds every producer from the application's one producer config and
    creates the librdkafka client on first use; until then its settings can still change.
    """
    client = getattr(producer, "_producer", None)  # InternalProducer -> kafka.Producer
    config = getattr(client, "_producer_config", None)
    if not isinstance(config, dict) or getattr(client, "_inner_producer", True) is not None:
        logger.warning("Could not apply the source's producer settings %s", settings)
        return
    config.update(settings)


def _release_recovery_consumer() -> None:
    """Unassign the consumer Quix Streams used to recover this source's state.

    Quix Streams (3.28) assigns the state's changelog partition to a consumer in the source's
    process and never releases it; when nothing needed recovering it is not even paused, so
    librdkafka fetches that partition in the background for the life of the process (every
    `fetch.wait.max.ms`). The consumer is not used again after the recovery.
    """
    consumer = getattr(multiprocessing.current_process(), "_consumer", None)
    if consumer is None:
        return
    try:
        consumer.unassign()
    except Exception as exc:  # never worth stopping the source for
        logger.debug("Could not release the state-recovery consumer: %s", exc)
