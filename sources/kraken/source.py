"""`KrakenTradesSource`: the thin I/O loop around the Kraken v2 protocol layer."""

from __future__ import annotations

import logging
import queue
import select
import time
from collections.abc import Iterable

import websocket
from quixstreams.models.topics import Topic, TopicConfig
from quixstreams.sources import StatefulSource

from .backfill import BackfillDone, BackfillJob, BackfillPage, BackfillWorker
from .backoff import Backoff
from .config import parse_pairs
from .protocol import (
    Event,
    Heartbeat,
    Malformed,
    Pong,
    ServerError,
    Status,
    SubscribeAck,
    SubscribeError,
    TradeBatch,
    parse_frame,
    subscribe_request,
)
from .rest import KrakenRest
from .sequencer import TradeSequencer, group_by_pair
from .stats import SourceStats
from .trade import Trade

__all__ = [
    "END_OF_BACKFILL_HEADER",
    "ConnectionLost",
    "KrakenTradesSource",
    "SubscriptionRejected",
]

logger = logging.getLogger(__name__)

# The source topic is an internal buffer between the source process and the dataframe.
SOURCE_TOPIC_CONFIG = TopicConfig(
    num_partitions=1,
    replication_factor=1,
    extra_config={"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"},
)
RECV_TIMEOUT_MAX = 1.0  # seconds: how often the loop looks at `self.running`
CHECKPOINT_INTERVAL = 1.0  # seconds between two commits of the published positions
END_OF_BACKFILL_HEADER = "kraken-trades-end-of-backfill"
MAX_HELD_TRADES = 1000  # most trades of frames held back while more frames are waiting


class SubscriptionRejected(RuntimeError):
    """Kraken refused to subscribe a configured pair: a configuration error, fatal."""


class ConnectionLost(ConnectionError):
    """The connection closed, failed or went silent; the source reconnects."""


class KrakenTradesSource(StatefulSource):
    """Every trade of `pairs` from Kraken's WebSocket API v2, published to the source topic.

    Each message of the source topic holds the new trades of one pair from one Kraken
    frame, or from consecutive frames that were already waiting (a JSON list of Kraken v2
    trade objects with `timestamp_ms` added, in trade_id order), keyed by the pair
    and stamped with the time of its last trade. Trades at or below the last published
    trade_id of their pair are dropped, so the snapshot Kraken re-sends after a reconnect
    publishes nothing twice.

    The loop reconnects on close, error or silence with exponential backoff and jitter
    and resubscribes to all pairs in one request. It raises only on a fatal error: a pair
    Kraken rejects.

    Gap-free: when a pair's trade_id jumps (after a reconnect, a restart, or mid-stream),
    the missing trades are fetched from Kraken's REST `Trades` endpoint in a background
    thread and published first, while that pair's live trades wait. The last published
    trade_id of each pair is kept in the source's state, so a restarted pipeline backfills
    what happened while it was down.
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
        rest_url: str | None = "https://api.kraken.com",
        rest_min_interval: float = 1.0,
        backfill_since_ns: int | None = None,
        backfill_only: bool = False,
        max_gap: int = 50_000,
        repair_timeout: float = 60.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        """
        :param pairs: Kraken v2 symbols (`BTC/USD`); validated here, so a typo fails at once.
        :param name: the source name; Quix Streams names the source topic `source__<name>`.
        :param ws_url: the WebSocket endpoint.
        :param snapshot: ask for the last 50 trades per pair on every (re)subscribe.
        :param heartbeat_timeout: seconds without any message before the connection is dropped.
        :param stats_interval: seconds between two summary lines in the log.
        :param connect_timeout: seconds allowed for the TCP + TLS + WebSocket handshake.
        :param max_backoff: the cap of the reconnect delay, seconds.
        :param rest_url: Kraken's REST API, used to repair gaps; None turns repair off.
        :param rest_min_interval: seconds between two REST calls (Kraken allows about 1/s).
        :param backfill_since_ns: also publish each pair's history from this time (epoch ns)
            on, before its live trades; ignored for pairs the state has a position for.
        :param backfill_only: publish the history up to now, then stop (no WebSocket).
        :param max_gap: the largest gap (in trades) to repair; a larger one is logged.
        :param repair_timeout: seconds a repair may go without a REST page before it is
            abandoned (logged) and the pair's held live trades are published.
        :param shutdown_timeout: seconds the application waits for the source to stop.
        """
        if isinstance(pairs, str):
            pairs = parse_pairs(pairs)
        self.pairs: tuple[str, ...] = parse_pairs(",".join(pairs))
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
        self.rest_url = rest_url
        self.rest_min_interval = rest_min_interval
        self.backfill_since_ns = backfill_since_ns
        self.backfill_only = backfill_only
        self.max_gap = max_gap
        self.repair_timeout = repair_timeout
        self.stats = SourceStats(interval=stats_interval)
        self.sequencer = TradeSequencer()
        self._backoff = Backoff(initial=1.0, cap=max_backoff)
        self._acknowledged: set[str] = set()
        self._connection_id: int | None = None
        self._req_id = 0
        self._worker: BackfillWorker | None = None
        self._results: queue.Queue[BackfillPage | BackfillDone] | None = None
        self._held: dict[str, list[Trade]] = {}  # live trades waiting for a repair, per pair
        self._jobs: dict[str, BackfillJob] = {}  # the backfill under way, per pair
        self._next_checkpoint = 0.0
        self._held_frames: list[Trade] = []  # trades of frames read ahead of the next one
        self._stop_requested = False
        super().__init__(name=name, shutdown_timeout=shutdown_timeout)

    @property
    def running(self) -> bool:
        """False once stopped, even when the stop came while the state was being recovered."""
        return self._running and not self._stop_requested

    def stop(self) -> None:
        """Ask the loop to finish (called on SIGTERM/SIGINT in the source's process)."""
        self._stop_requested = True
        super().stop()

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Connect, subscribe, publish; reconnect on failure; return only when stopped."""
        _log_like_quixstreams()
        self.stats = SourceStats(interval=self.stats_interval)  # this process's clock
        self._restore_positions()
        self._start_backfill_worker()
        try:
            if self.backfill_only:
                self._run_backfill_only()
            else:
                self._run_live()
        finally:
            if self._worker:
                self._worker.stop()
            logger.info("Stopped. %s", self.stats.summary())
        self._checkpoint()

    def _run_live(self) -> None:
        logger.info("Streaming trades of %s from %s", ", ".join(self.pairs), self.ws_url)
        while self.running:
            try:
                self._session()
            except SubscriptionRejected:
                raise
            except (ConnectionLost, websocket.WebSocketException, OSError) as exc:
                if not self.running:
                    break
                self.stats.reconnects += 1
                delay = self._backoff.next_delay()
                logger.warning(
                    "Disconnected from Kraken (connection_id=%s): %s; reconnecting in %.1f s "
                    "(attempt %d)",
                    self._connection_id,
                    exc or type(exc).__name__,
                    delay,
                    self._backoff.attempt,
                )
                self._sleep(delay)

    def _run_backfill_only(self) -> None:
        logger.info("Backfilling %s up to now, then stopping", ", ".join(self.pairs))
        while self.running and self._held:
            self._drain_backfill(timeout=0.5)
            self._housekeeping()
        if not self.running:
            return
        self._checkpoint()
        # tells the dataframe that everything before it is all there is
        message = self.serialize(key="", value=[])
        self.produce(key=message.key, value=message.value, headers=[(END_OF_BACKFILL_HEADER, b"1")])
        self.producer.flush()
        logger.info("Backfill complete: %s", self.stats.summary())
        while self.running:  # the application stops once the dataframe saw the marker
            time.sleep(0.2)

    def _session(self) -> None:
        """One connection: subscribe, then read frames until it fails or the source stops."""
        self._connection_id = None
        ws = websocket.create_connection(
            self.ws_url,
            timeout=self.connect_timeout,
            skip_utf8_validation=True,  # orjson validates UTF-8 as it parses
            enable_multithread=False,
        )
        try:
            ws.settimeout(min(RECV_TIMEOUT_MAX, self.heartbeat_timeout))
            self._req_id += 1
            ws.send(subscribe_request(self.pairs, snapshot=self.snapshot, req_id=self._req_id))
            last_message = time.monotonic()
            while self.running:
                try:
                    opcode, frame = ws.recv_data()
                except websocket.WebSocketTimeoutException:
                    self._publish_held()  # what came before a control frame, say
                    silent = time.monotonic() - last_message
                    if silent > self.heartbeat_timeout:
                        raise ConnectionLost(f"no message for {silent:.1f} s") from None
                    self._housekeeping()
                    continue
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise ConnectionLost(f"server closed the connection {_close_reason(frame)}")
                last_message = time.monotonic()
                self.handle_frame(frame, more=_frame_waiting(ws))
                self._housekeeping()
        finally:
            self._publish_held()
            _close_quietly(ws)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running and (remaining := deadline - time.monotonic()) > 0:
            self._drain_backfill(timeout=min(remaining, 0.2))
            self._housekeeping()

    def _housekeeping(self) -> None:
        """Between frames: publish backfilled pages, commit positions, log the summary."""
        if self._results is not None and not self._results.empty():
            self._drain_backfill(timeout=0)
        if self._jobs and not self.backfill_only:
            self._abandon_stalled_repairs()
        now = time.monotonic()
        if now >= self._next_checkpoint:
            self._checkpoint()
            self._next_checkpoint = now + CHECKPOINT_INTERVAL
        if self.stats.summary_due(now):
            logger.info("Summary: %s", self.stats.summary())

    # --- the protocol events ----------------------------------------------------------

    def handle_frame(self, frame: str | bytes, *, more: bool = False) -> None:
        """Parse one frame and act on each of its events.

        With `more` (the next frame has already arrived), its trades are held back and go
        out with the next frames': under load, fewer and larger source-topic messages.
        """
        for event in parse_frame(frame):
            if isinstance(event, TradeBatch):
                self._held_frames.extend(event.trades)
            else:
                self._publish_held()
                self.handle_event(event)
        if not more or len(self._held_frames) >= MAX_HELD_TRADES:
            self._publish_held()

    def _publish_held(self) -> None:
        if self._held_frames:
            trades, self._held_frames = self._held_frames, []
            self._on_trades(tuple(trades))

    def handle_event(self, event: Event) -> None:
        """Act on one protocol event."""
        if isinstance(event, TradeBatch):
            self._on_trades(event.trades)
        elif isinstance(event, Malformed):
            self.stats.malformed += 1
            logger.warning(
                "Malformed input #%d (%s): %s", self.stats.malformed, event.reason, event.excerpt
            )
        elif isinstance(event, Status):
            self._on_status(event)
        elif isinstance(event, SubscribeAck):
            self._on_ack(event)
        elif isinstance(event, SubscribeError):
            self._on_subscribe_error(event)
        elif isinstance(event, ServerError):
            raise ConnectionLost(f"Kraken error: {event.error}")
        elif isinstance(event, (Heartbeat, Pong)):
            pass

    def _on_status(self, status: Status) -> None:
        self._connection_id = status.connection_id
        if status.system == "online":
            logger.info(
                "Connected to %s (connection_id=%s, api %s, version %s)",
                self.ws_url,
                status.connection_id,
                status.api_version,
                status.version,
            )
        else:
            logger.warning(
                "Kraken system status is %r (connection_id=%s)", status.system, status.connection_id
            )

    def _on_ack(self, ack: SubscribeAck) -> None:
        if ack.method != "subscribe" or ack.symbol is None:
            return
        first_time = ack.symbol not in self._acknowledged
        self._acknowledged.add(ack.symbol)
        logger.info(
            "Subscribed to %s trades (connection_id=%s)%s",
            ack.symbol,
            self._connection_id,
            "" if first_time else " again",
        )
        if self._acknowledged.issuperset(self.pairs):
            self._backoff.reset()

    def _on_subscribe_error(self, error: SubscribeError) -> None:
        if error.method != "subscribe":
            logger.warning("Kraken refused to %s %s: %s", error.method, error.symbol, error.error)
            return
        if error.symbol is None or error.symbol not in self._acknowledged:
            raise SubscriptionRejected(
                f"Kraken rejected the subscription to {error.symbol or ', '.join(self.pairs)}: "
                f"{error.error}"
            )
        raise ConnectionLost(f"Kraken refused to resubscribe {error.symbol}: {error.error}")

    # --- publishing -------------------------------------------------------------------

    def _on_trades(self, trades: tuple[Trade, ...]) -> None:
        for pair, batch in group_by_pair(trades).items():
            held = self._held.get(pair)
            if held is not None:  # a backfill of this pair is under way: wait behind it
                held.extend(batch)
            else:
                self._advance(pair, batch)

    def _advance(self, pair: str, trades: list[Trade], *, repairable: bool = True) -> None:
        """Publish what continues `pair`'s sequence; start a repair at a gap."""
        can_repair = repairable and self._worker is not None
        sequenced = self.sequencer.accept(pair, trades, stop_at_gap=can_repair)
        self.stats.duplicates += sequenced.duplicates
        if sequenced.fresh:
            self.publish(pair, sequenced.fresh)
        gap = sequenced.gap
        if gap is None:
            return
        self.stats.gaps += 1
        self.stats.missed_trades += gap.size
        if can_repair and gap.size <= self.max_gap:
            logger.warning(
                "Gap in %s: trade_id %d..%d (%d trades) missed; fetching them from Kraken REST",
                pair,
                gap.first_missing,
                gap.last_missing,
                gap.size,
            )
            self._held[pair] = list(sequenced.after_gap)
            self._submit(
                BackfillJob(
                    pair,
                    since_ns=(gap.after_timestamp_ms - 1) * 1_000_000,
                    until_id=gap.last_missing,
                    reason=f"gap {gap.first_missing}..{gap.last_missing}",
                )
            )
            return
        logger.error(
            "Gap in %s: trade_id %d..%d (%d trades) missed and not repaired (%s)",
            pair,
            gap.first_missing,
            gap.last_missing,
            gap.size,
            "larger than max_gap" if can_repair else "repair is off",
        )
        if sequenced.after_gap:
            self._advance(pair, sequenced.after_gap, repairable=False)

    def publish(self, pair: str, trades: list[Trade]) -> None:
        """Produce the trades of one pair as one source-topic message."""
        message = self.serialize(
            key=pair,
            value=[trade.to_message() for trade in trades],
            timestamp_ms=trades[-1].timestamp_ms,
        )
        self.produce(key=message.key, value=message.value, timestamp=message.timestamp)
        self.stats.trades[pair] += len(trades)

    # --- backfill ---------------------------------------------------------------------

    def _start_backfill_worker(self) -> None:
        if not self.rest_url:
            return
        self._results = queue.Queue()
        rest = KrakenRest(self.rest_url, min_interval=self.rest_min_interval)
        self._worker = BackfillWorker(rest, self._results)
        self._worker.start()
        if self.backfill_since_ns is None:
            return
        for pair in self.pairs:
            position = self.sequencer.last(pair)
            if position is not None:
                logger.info(
                    "%s resumes after trade_id %d: backfill_since does not apply", pair, position[0]
                )
                continue
            self._held[pair] = []
            reason = f"history since {_iso(self.backfill_since_ns)}"
            self._submit(BackfillJob(pair, self.backfill_since_ns, None, reason=reason))

    def _submit(self, job: BackfillJob) -> None:
        assert self._worker is not None
        self._jobs[job.pair] = job
        self._worker.submit(job)

    def _abandon_stalled_repairs(self) -> None:
        """Live trades wait for a repair only so long: then they go, and the gap stays."""
        for pair, job in list(self._jobs.items()):
            if job.stalled_for() < self.repair_timeout:
                continue
            job.cancelled = True
            del self._jobs[pair]
            held = self._held.pop(pair, [])
            logger.error(
                "Backfill of %s (%s) made no progress for %.0f s: abandoned; publishing the "
                "%d live trades held behind it",
                pair,
                job.reason,
                job.stalled_for(),
                len(held),
            )
            if held:
                self._advance(pair, held, repairable=False)

    def _drain_backfill(self, timeout: float) -> None:
        """Act on every backfill result waiting, after waiting up to `timeout` for one."""
        if self._results is None:
            time.sleep(timeout)
            return
        try:
            result = self._results.get(timeout=timeout) if timeout else self._results.get_nowait()
        except queue.Empty:
            return
        while True:
            self._on_backfill(result)
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return

    def _on_backfill(self, result: BackfillPage | BackfillDone) -> None:
        pair = result.job.pair
        if result.job.cancelled:
            return
        if isinstance(result, BackfillPage):
            sequenced = self.sequencer.accept(pair, result.page.trades, stop_at_gap=False)
            if sequenced.fresh:
                self.publish(pair, sequenced.fresh)
                self.stats.backfilled += len(sequenced.fresh)
            if sequenced.gap:
                logger.error(
                    "Kraken REST lacks %s trade_id %d..%d too",
                    pair,
                    sequenced.gap.first_missing,
                    sequenced.gap.last_missing,
                )
            return
        self._jobs.pop(pair, None)
        held = self._held.pop(pair, [])
        last = self.sequencer.last(pair)
        outcome = "complete" if result.complete else f"INCOMPLETE: {result.error or 'no more'}"
        logger.info(
            "Backfill of %s done (%s), %s: %d trades fetched, now at trade_id %s",
            pair,
            result.job.reason,
            outcome,
            result.job.fetched,
            last[0] if last else None,
        )
        if held:
            self._advance(pair, held, repairable=result.complete)

    # --- state ------------------------------------------------------------------------

    def _restore_positions(self) -> None:
        positions = {}
        for pair in self.pairs:
            saved = self.state.get(pair)
            if saved:
                positions[pair] = (int(saved[0]), int(saved[1]))
        if positions:
            resumed = ", ".join(
                f"{pair} after trade_id {pos[0]}" for pair, pos in positions.items()
            )
            logger.info("Resuming from the state: %s", resumed)
        self.sequencer = TradeSequencer(positions)

    def _checkpoint(self) -> None:
        """Deliver what was produced, then record the positions it reached."""
        self.producer.flush()  # trades first, so the state never runs ahead of them
        state = self.state
        for pair, position in self.sequencer.positions.items():
            state.set(pair, list(position))
        self.flush()

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


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def _frame_waiting(ws: websocket.WebSocket) -> bool:
    """True when the next frame has (at least partly) arrived: reading it will not wait."""
    sock = ws.sock
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted
    if pending is not None and pending():
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # e.g. a descriptor beyond select's range: no read-ahead
        return False


def _close_reason(frame: bytes) -> str:
    if len(frame) >= 2:
        code = int.from_bytes(frame[:2], "big")
        reason = frame[2:].decode("utf-8", "replace")
        return f"(code {code}{', ' + reason if reason else ''})"
    return "(no close code)"


def _close_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.close(timeout=0.5)
    except (websocket.WebSocketException, OSError):
        ws.shutdown()
