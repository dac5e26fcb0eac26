"""One WebSocket connection to Kraken v2: connect, subscribe, read, watchdog.

The thin I/O around `protocol.parse_frame`: it turns frames into trades for the core and
acts on everything else (status, acknowledgements, errors, malformed input) itself.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Collection
from dataclasses import dataclass

import websocket

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
)
from .trade import Trade

__all__ = ["ConnectionLost", "KrakenSession", "SessionStats", "SubscriptionRejected"]

logger = logging.getLogger(__name__)

MAX_READ_AHEAD = 100  # most frames read in one go when they are already waiting


class SubscriptionRejected(RuntimeError):
    """Kraken refused a configured pair it never accepted: a configuration error, fatal."""


class ConnectionLost(ConnectionError):
    """The connection closed, failed or went silent; the source reconnects."""


@dataclass
class SessionStats:
    """What the WebSocket side saw, over all connections."""

    malformed: int = 0
    reconnects: int = 0
    connections: int = 0


class KrakenSession:
    """One connection: subscribe every pair in one request, then read trades.

    :param url: the WebSocket endpoint.
    :param pairs: the Kraken v2 symbols to subscribe.
    :param acknowledged: pairs Kraken accepted at least once (shared across connections):
        a later refusal of one of them is a reason to reconnect, not to stop.
    :param stats: counters to add to.
    :param snapshot: ask for the last 50 trades of each pair on subscribing.
    :param connect_timeout: seconds for the TCP + TLS + WebSocket handshake.
    :param heartbeat_timeout: seconds without any message before the connection is dropped.
    """

    def __init__(
        self,
        url: str,
        pairs: Collection[str],
        *,
        acknowledged: set[str],
        stats: SessionStats,
        snapshot: bool = True,
        connect_timeout: float = 10.0,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.pairs = tuple(pairs)
        self.acknowledged = acknowledged
        self.stats = stats
        self.snapshot = snapshot
        self.connect_timeout = connect_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.connection_id: int | None = None
        self.subscribed: set[str] = set()
        self._ws: websocket.WebSocket | None = None
        self._last_message = 0.0

    def open(self, req_id: int) -> None:
        """Connect and send one subscribe request for every pair."""
        self.connection_id = None
        self.subscribed = set()
        ws = websocket.create_connection(
            self.url,
            timeout=self.connect_timeout,
            skip_utf8_validation=True,  # the parser validates what it reads
            enable_multithread=False,
        )
        self._ws = ws
        self.stats.connections += 1
        ws.send(subscribe_request(self.pairs, snapshot=self.snapshot, req_id=req_id))
        self._last_message = time.monotonic()

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
        ws.settimeout(min(timeout, self.heartbeat_timeout))
        for _ in range(MAX_READ_AHEAD):
            try:
                opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                silent = time.monotonic() - self._last_message
                if silent > self.heartbeat_timeout:
                    raise ConnectionLost(f"no message for {silent:.1f} s") from None
                break
            except (websocket.WebSocketException, OSError) as exc:
                raise ConnectionLost(str(exc) or type(exc).__name__) from exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionLost(f"server closed the connection {_close_reason(frame)}")
            self._last_message = time.monotonic()
            for event in parse_frame(frame):
                if isinstance(event, TradeBatch):
                    trades.extend(event.trades)
                elif not isinstance(event, (Heartbeat, Pong)):
                    self._on_event(event)
            if not _frame_waiting(ws):
                break
        return trades

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
                "Kraken system status is %r (connection_id=%s)", status.system, status.connection_id
            )

    def _on_ack(self, ack: SubscribeAck) -> None:
        if ack.method != "subscribe" or ack.symbol is None:
            return
        again = ack.symbol in self.acknowledged
        self.acknowledged.add(ack.symbol)
        self.subscribed.add(ack.symbol)
        logger.info(
            "Subscribed to %s trades (connection_id=%s)%s",
            ack.symbol,
            self.connection_id,
            " again" if again else "",
        )

    def _on_subscribe_error(self, error: SubscribeError) -> None:
        if error.method != "subscribe":
            logger.warning("Kraken refused to %s %s: %s", error.method, error.symbol, error.error)
            return
        symbol = error.symbol
        never_accepted = (
            symbol in self.pairs and symbol not in self.acknowledged
            if symbol is not None
            else not self.acknowledged
        )
        if never_accepted:
            raise SubscriptionRejected(
                f"Kraken rejected the subscription to {symbol or ', '.join(self.pairs)}: "
                f"{error.error}"
            )
        raise ConnectionLost(f"Kraken refused to subscribe {symbol or 'a pair'}: {error.error}")


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
