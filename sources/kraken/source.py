"""`KrakenTradesSource`: the thin I/O loop around the Kraken v2 protocol layer."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import websocket
from quixstreams.models.topics import Topic, TopicConfig
from quixstreams.sources import Source

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
from .sequencer import Gap, TradeSequencer
from .stats import SourceStats
from .trade import Trade

__all__ = ["ConnectionLost", "KrakenTradesSource", "SubscriptionRejected"]

logger = logging.getLogger(__name__)

# The source topic is an internal buffer between the source process and the dataframe.
SOURCE_TOPIC_CONFIG = TopicConfig(
    num_partitions=1,
    replication_factor=1,
    extra_config={"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"},
)
RECV_TIMEOUT_MAX = 1.0  # seconds: how often the loop looks at `self.running`


class SubscriptionRejected(RuntimeError):
    """Kraken refused to subscribe a configured pair: a configuration error, fatal."""


class ConnectionLost(ConnectionError):
    """The connection closed, failed or went silent; the source reconnects."""


class KrakenTradesSource(Source):
    """Every trade of `pairs` from Kraken's WebSocket API v2, published to the source topic.

    Each message of the source topic holds the new trades of one pair from one Kraken
    frame (a JSON list of Kraken v2 trade objects), keyed by the pair and stamped with the
    time of its last trade. Trades at or below the last published trade_id of their pair
    are dropped, so the snapshot Kraken re-sends after a reconnect publishes nothing twice.

    The loop reconnects on close, error or silence with exponential backoff and jitter
    and resubscribes to all pairs in one request. It raises only on a fatal error: a pair
    Kraken rejects.
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
        :param shutdown_timeout: seconds the application waits for the source to stop.
        """
        if isinstance(pairs, str):
            pairs = parse_pairs(pairs)
        self.pairs: tuple[str, ...] = parse_pairs(",".join(pairs))
        if heartbeat_timeout <= 0 or connect_timeout <= 0 or stats_interval <= 0:
            raise ValueError("heartbeat_timeout, connect_timeout and stats_interval must be > 0")
        self.ws_url = ws_url
        self.snapshot = snapshot
        self.heartbeat_timeout = heartbeat_timeout
        self.stats_interval = stats_interval
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.stats = SourceStats(interval=stats_interval)
        self.sequencer = TradeSequencer()
        self._backoff = Backoff(initial=1.0, cap=max_backoff)
        self._acknowledged: set[str] = set()
        self._connection_id: int | None = None
        self._req_id = 0
        super().__init__(name=name, shutdown_timeout=shutdown_timeout)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Connect, subscribe, publish; reconnect on failure; return only when stopped."""
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
        logger.info("Stopped. %s", self.stats.summary())

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
                    silent = time.monotonic() - last_message
                    if silent > self.heartbeat_timeout:
                        raise ConnectionLost(f"no message for {silent:.1f} s") from None
                    self._maybe_log_summary()
                    continue
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise ConnectionLost(f"server closed the connection {_close_reason(frame)}")
                last_message = time.monotonic()
                self.handle_frame(frame)
                self._maybe_log_summary()
        finally:
            _close_quietly(ws)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(remaining, 0.2))

    def _maybe_log_summary(self) -> None:
        if self.stats.summary_due():
            logger.info("Summary: %s", self.stats.summary())

    # --- the protocol events ----------------------------------------------------------

    def handle_frame(self, frame: str | bytes) -> None:
        """Parse one frame and act on each of its events."""
        for event in parse_frame(frame):
            self.handle_event(event)

    def handle_event(self, event: Event) -> None:
        """Act on one protocol event."""
        if isinstance(event, TradeBatch):
            self._publish_trades(event.trades)
        elif isinstance(event, Heartbeat):
            pass
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
        elif isinstance(event, Pong):
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

    def _publish_trades(self, trades: tuple[Trade, ...]) -> None:
        sequenced = self.sequencer.accept(trades)
        self.stats.duplicates += sequenced.duplicates
        for gap in sequenced.gaps:
            self.on_gap(gap)
        for pair, fresh in sequenced.fresh.items():
            self.publish(pair, fresh)

    def publish(self, pair: str, trades: list[Trade]) -> None:
        """Produce the trades of one pair as one source-topic message."""
        message = self.serialize(
            key=pair,
            value=[trade.to_kraken() for trade in trades],
            timestamp_ms=trades[-1].timestamp_ms,
        )
        self.produce(key=message.key, value=message.value, timestamp=message.timestamp)
        self.stats.trades[pair] += len(trades)

    def on_gap(self, gap: Gap) -> None:
        """Called when trades of a pair were missed."""
        self.stats.gaps += 1
        self.stats.missed_trades += gap.size
        logger.warning(
            "Gap in %s: trade_id %d..%d (%d trades) missed",
            gap.pair,
            gap.first_missing,
            gap.last_missing,
            gap.size,
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
