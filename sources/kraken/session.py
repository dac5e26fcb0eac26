"""One WebSocket connection to Kraken v2: connect, subscribe, read, watchdog.

The thin I/O around `protocol.parse_frame`: it turns frames into trades for the core and
acts on everything else (status, acknowledgements, errors, malformed input) itself.
"""

from __future__ import annotations

import functools
import logging
import select
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import websocket

from .limits import DEFAULT_MAX_MESSAGE, CappedWebSocket, MessageTooBig
from .protocol import (
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
    unsubscribe_request,
)
from .text import printable
from .trade import Trade

__all__ = [
    "SUBSCRIBE_INTERVAL",
    "ConnectionLost",
    "KrakenSession",
    "SessionStats",
    "SubscriptionRejected",
    "chunked",
]

logger = logging.getLogger(__name__)

MAX_READ_AHEAD = 100  # most frames read in one go when they are already waiting
# Seconds between two subscribe requests on one connection. Kraken answers requests sent too
# fast with {"Error":"Exceeded msg rate"} (its support has quoted about 20 messages a second
# per connection; the limit is not documented): two a second stays far below it.
SUBSCRIBE_INTERVAL = 0.5
ACK_LOG_LIMIT = 10  # a connection of more pairs logs one line when all are subscribed


class SubscriptionRejected(RuntimeError):
    """Kraken refused a configured pair it never accepted: a configuration error, fatal."""


class ConnectionLost(ConnectionError):
    """The connection closed, failed or went silent; the source reconnects.

    :param level: how loud the reconnect is logged (an oversized message: ERROR).
    """

    def __init__(self, message: str, *, level: int = logging.WARNING) -> None:
        super().__init__(message)
        self.level = level


@dataclass
class SessionStats:
    """What the WebSocket side saw, over all connections."""

    malformed: int = 0
    reconnects: int = 0
    connections: int = 0


class KrakenSession:
    """One connection: subscribe its pairs (in requests of `subscribe_batch`), then read trades.

    :param url: the WebSocket endpoint.
    :param pairs: the Kraken v2 symbols to subscribe.
    :param acknowledged: pairs Kraken accepted at least once (shared across connections):
        a later refusal of one of them is a reason to reconnect, not to stop.
    :param stats: counters to add to.
    :param snapshot: ask for the last 50 trades of each pair on subscribing.
    :param exact: keep each price's and volume's decimal text (`protocol.parse_frame`).
    :param connect_timeout: seconds for the TCP + TLS + WebSocket handshake.
    :param heartbeat_timeout: seconds without any message before the connection is dropped.
    :param subscribe_batch: most symbols per subscribe request (0: all in one); the requests
        after the first are sent by `subscribe_next`, `subscribe_interval` seconds apart.
    :param optional: pairs that came from `all` or a pattern: when Kraken refuses one it never
        accepted, it is left out (`left_out`, logged) instead of raising `SubscriptionRejected`.
    :param max_message: most bytes of one message; a longer one drops the connection unread.
    """

    def __init__(
        self,
        url: str,
        pairs: Collection[str],
        *,
        acknowledged: set[str],
        stats: SessionStats,
        snapshot: bool = True,
        exact: bool = False,
        connect_timeout: float = 10.0,
        heartbeat_timeout: float = 10.0,
        subscribe_batch: int = 0,
        subscribe_interval: float = SUBSCRIBE_INTERVAL,
        optional: Collection[str] = (),
        max_message: int = DEFAULT_MAX_MESSAGE,
    ) -> None:
        self.url = url
        self.max_message = max_message
        self.pairs = tuple(pairs)
        self.subscribe_batch = subscribe_batch
        self.subscribe_interval = subscribe_interval
        self.optional = frozenset(optional)
        self.left_out: dict[str, str] = {}  # optional pairs Kraken refused -> its error
        self.opened_at = 0.0  # time.monotonic() when the connection opened
        self._pending: list[tuple[str, ...]] = []  # subscribe requests not sent yet
        self._next_subscribe = 0.0
        self._ack_level = logging.INFO if len(self.pairs) <= ACK_LOG_LIMIT else logging.DEBUG
        self._complete_logged = False
        self.acknowledged = acknowledged
        self.stats = stats
        self.snapshot = snapshot
        self.exact = exact
        self.connect_timeout = connect_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.connection_id: int | None = None
        self.subscribed: set[str] = set()
        self._resubscribing: set[str] = set()
        self._ws: websocket.WebSocket | None = None
        self._last_message = 0.0

    def open(self, req_id: int) -> None:
        """Connect and send the first subscribe request (of all pairs, unless batched)."""
        self.connection_id = None
        self.subscribed = set()
        self._resubscribing = set()
        self._complete_logged = False
        ws = websocket.create_connection(
            self.url,
            timeout=self.connect_timeout,
            skip_utf8_validation=True,  # the parser validates what it reads
            enable_multithread=False,
            class_=functools.partial(CappedWebSocket, max_message=self.max_message),
        )
        self._ws = ws
        self.stats.connections += 1
        chunks = chunked(self.pairs, self.subscribe_batch) or [()]
        first, self._pending = chunks[0], chunks[1:]
        ws.send(subscribe_request(first, snapshot=self.snapshot, req_id=req_id))
        self.opened_at = self._last_message = time.monotonic()
        self._next_subscribe = self.opened_at + self.subscribe_interval

    # --- subscribe requests after the first ---------------------------------------------

    @property
    def next_subscribe_at(self) -> float | None:
        """When the next subscribe request is due (time.monotonic()); None: all sent."""
        return self._next_subscribe if self._pending and self._ws is not None else None

    def subscribe_next(self, req_id: int, now: float) -> bool:
        """Send the next subscribe request if it is due; True if one was sent.

        :raises ConnectionLost: when it cannot be sent.
        """
        ws = self._ws
        if ws is None or not self._pending or now < self._next_subscribe:
            return False
        chunk = tuple(p for p in self._pending.pop(0) if p not in self.left_out)
        self._next_subscribe = now + self.subscribe_interval
        if not chunk:
            return False
        try:
            ws.send(subscribe_request(chunk, snapshot=self.snapshot, req_id=req_id))
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionLost(f"subscribe failed: {exc or type(exc).__name__}") from exc
        return True

    @property
    def fully_subscribed(self) -> bool:
        """Every pair of this connection acknowledged (or left out)."""
        return len(self.subscribed) + len(self.left_out) >= len(self.pairs)

    # --- for a loop that reads several connections --------------------------------------

    def fileno(self) -> int:
        """The socket's descriptor, for `select` (-1 when not connected)."""
        ws = self._ws
        sock = ws.sock if ws is not None else None
        return sock.fileno() if sock is not None else -1

    def buffered(self) -> bool:
        """True when bytes already read from the socket (TLS) wait: `select` would not see them."""
        ws = self._ws
        sock = ws.sock if ws is not None else None
        pending = getattr(sock, "pending", None)
        return bool(pending is not None and pending())

    def check_silence(self, now: float) -> None:
        """The watchdog, for a connection `read` was not called on.

        :raises ConnectionLost: when nothing arrived for longer than `heartbeat_timeout`.
        """
        silent = now - self._last_message
        if silent > self.heartbeat_timeout:
            raise ConnectionLost(f"no message for {silent:.1f} s")

    def read(self, timeout: float) -> list[Trade]:
        """The trades of the next frame and of the frames already waiting behind it.

        Waits up to `timeout` seconds; returns [] when nothing came.
        :raises ConnectionLost: on a close, an error, a server error or too long a silence.
        :raises SubscriptionRejected: when Kraken refuses a pair it never accepted.
        """
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        trades: list[Trade] = []
        timed_out = False
        ws.settimeout(min(timeout, self.heartbeat_timeout))
        for _ in range(MAX_READ_AHEAD):
            try:
                opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                timed_out = True
                break
            except MessageTooBig as exc:
                raise ConnectionLost(
                    f"Kraken sent {exc} (max_ws_message_mb): closed unread", level=logging.ERROR
                ) from exc
            except (websocket.WebSocketException, OSError) as exc:
                raise ConnectionLost(str(exc) or type(exc).__name__) from exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionLost(f"server closed the connection {_close_reason(frame)}")
            self._last_message = time.monotonic()
            for event in parse_frame(frame, exact=self.exact):
                if isinstance(event, TradeBatch):
                    trades.extend(event.trades)
                elif not isinstance(event, (Heartbeat, Pong)):
                    self._on_event(event)
            if not _frame_waiting(ws):
                break
        if timed_out:
            self.check_silence(time.monotonic())
        return trades

    def resubscribe(self, pairs: Collection[str], req_id: int) -> bool:
        """Unsubscribe `pairs` and subscribe them again with a snapshot (their last 50 trades).

        The check for a subscription gone silent (see `feed.Feed`): Kraken refuses a second
        subscribe of a subscribed pair ("Already subscribed"), so the unsubscribe goes first,
        on the same connection, which Kraken reads in order. The snapshot is asked for even
        when `snapshot` is off: it is the answer. The new acknowledgements are logged at DEBUG
        level and, like any acknowledgement, reset nothing (the reconnect backoff counts
        connections that lasted, not acks). Pairs this session does not hold are ignored.

        :returns: False when not connected (the next connection subscribes them anyway).
        :raises ConnectionLost: when the requests cannot be sent.
        """
        ws = self._ws
        mine = [pair for pair in pairs if pair in self.pairs]
        if ws is None or not mine:
            return False
        try:
            ws.send(unsubscribe_request(mine, req_id=req_id))
            ws.send(subscribe_request(mine, snapshot=True, req_id=req_id))
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionLost(f"resubscribe failed: {exc or type(exc).__name__}") from exc
        self._resubscribing.update(mine)
        logger.debug("Resubscribing to %d pairs (req_id=%d)", len(mine), req_id)
        return True

    def close(self) -> None:
        """Close the connection (quietly; it may be broken already)."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            ws.close(timeout=0.5)
        except (websocket.WebSocketException, OSError):
            ws.shutdown()

    # --- events other than trades -----------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, Malformed):
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

    def _on_status(self, status: Status) -> None:
        self.connection_id = status.connection_id
        if status.system == "online":
            logger.info(
                "Connected to %s (connection_id=%s, api %s, version %s)",
                self.url,
                status.connection_id,
                status.api_version,
                status.version,
            )
        else:
            logger.warning(
                "Kraken system status is '%s' (connection_id=%s)",
                status.system,
                status.connection_id,
            )

    def _on_ack(self, ack: SubscribeAck) -> None:
        if ack.symbol is None:
            return
        if ack.method == "unsubscribe":
            if ack.symbol not in self._resubscribing:  # in a resubscribe it counts as subscribed
                self.subscribed.discard(ack.symbol)
            return
        if ack.method != "subscribe":
            return
        again = ack.symbol in self.acknowledged
        self.acknowledged.add(ack.symbol)
        self.subscribed.add(ack.symbol)
        self._note_complete()
        if ack.symbol in self._resubscribing:
            self._resubscribing.discard(ack.symbol)
            logger.debug(
                "Resubscribed to %s trades (connection_id=%s)", ack.symbol, self.connection_id
            )
            return
        logger.log(
            self._ack_level,
            "Subscribed to %s trades (connection_id=%s)%s",
            ack.symbol,
            self.connection_id,
            " again" if again else "",
        )

    def _note_complete(self) -> None:
        """Once per connection with many pairs: one line when all of them are subscribed."""
        if self._complete_logged or self._pending or not self.fully_subscribed:
            return
        self._complete_logged = True
        if self._ack_level != logging.INFO:  # few pairs: each was logged on its own
            logger.info(
                "Subscribed to all %d pairs of this connection (connection_id=%s) in %.1f s%s",
                len(self.subscribed),
                self.connection_id,
                time.monotonic() - self.opened_at,
                f", {len(self.left_out)} left out" if self.left_out else "",
            )

    def _on_subscribe_error(self, error: SubscribeError) -> None:
        if error.method != "subscribe":
            logger.warning(
                "Kraken refused to %s %s: %s", error.method, printable(error.symbol), error.error
            )
            return
        symbol = error.symbol
        never_accepted = (
            symbol in self.pairs and symbol not in self.acknowledged
            if symbol is not None
            else not self.acknowledged
        )
        if never_accepted and symbol in self.optional:
            self.left_out[symbol] = error.error  # came from a pattern: not worth stopping for
            logger.warning(
                "Kraken rejected the subscription to %s (from a pattern): left out (%s)",
                symbol,
                error.error,
            )
            self._note_complete()
            return
        if never_accepted:
            raise SubscriptionRejected(
                f"Kraken rejected the subscription to {symbol or ', '.join(self.pairs)}: "
                f"{error.error}"
            )
        raise ConnectionLost(
            f"Kraken refused to subscribe {printable(symbol or 'a pair')}: {error.error}"
        )


def chunked(pairs: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """`pairs` in subscribe requests of `size` symbols at most (0: all in one request)."""
    pairs = tuple(pairs)
    if size <= 0:
        return [pairs] if pairs else []
    return [pairs[start : start + size] for start in range(0, len(pairs), size)]


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
        reason = printable(frame[2:])
        return f"(code {code}{', ' + reason if reason else ''})"
    return "(no close code)"
