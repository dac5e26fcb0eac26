"""One WebSocket connection to Kraken v2: the socket around `subscriptions.Subscriptions`.

The thin I/O: it connects, sends what the subscriptions state machine asks, reads frames,
turns them into trades for the core (`protocol.parse_frame`) and hands every other event to
the state machine, raising what it decides: `SubscriptionRejected` (fatal) or
`ConnectionLost` (reconnect).
"""

from __future__ import annotations

import functools
import logging
import select
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import websocket

from .limits import DEFAULT_MAX_MESSAGE, CappedWebSocket, MessageTooBig
from .protocol import Heartbeat, Malformed, Pong, Status, TradeBatch, parse_frame
from .subscriptions import SUBSCRIBE_INTERVAL, Fatal, Reconnect, Subscriptions, chunked
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
_SOCKET_ERRORS = (websocket.WebSocketException, OSError)


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
    """One connection: subscribe its pairs as `subscriptions` asks, then read trades.

    :param url: the WebSocket endpoint.
    :param subscriptions: the connection's pairs and their state (kept across connections).
        The form before 0.2, pairs and their options (`acknowledged`, `optional`, `snapshot`,
        `heartbeat_timeout`, `subscribe_batch`, `subscribe_interval`) as keywords of the
        session, still works, with a `DeprecationWarning`.
    :param stats: counters to add to.
    :param exact: keep each price's and volume's decimal text (`protocol.parse_frame`).
    :param connect_timeout: seconds for the TCP + TLS + WebSocket handshake.
    :param max_message: most bytes of one message; a longer one drops the connection unread.
    """

    def __init__(
        self,
        url: str,
        subscriptions: Subscriptions | Collection[str],
        *,
        stats: SessionStats,
        exact: bool = False,
        connect_timeout: float = 10.0,
        max_message: int = DEFAULT_MAX_MESSAGE,
        **pairs_options: Any,
    ) -> None:
        if not isinstance(subscriptions, Subscriptions) or pairs_options:
            subscriptions = _subscriptions_before_0_2(subscriptions, pairs_options)
        self.url = url
        self.subscriptions = subscriptions
        self.stats = stats
        self.exact = exact
        self.connect_timeout = connect_timeout
        self.max_message = max_message
        self._ws: websocket.WebSocket | None = None

    # --- the state, as `subscriptions` holds it ---------------------------------------

    @property
    def pairs(self) -> tuple[str, ...]:
        """The connection's pairs."""
        return self.subscriptions.pairs

    @property
    def subscribed(self) -> set[str]:
        """Pairs acknowledged on this connection."""
        return self.subscriptions.subscribed

    @property
    def left_out(self) -> dict[str, str]:
        """Pairs from a pattern that Kraken refused -> its error."""
        return self.subscriptions.left_out

    @property
    def connection_id(self) -> int | None:
        """Kraken's id of the connection (None until its status message)."""
        return self.subscriptions.connection_id

    @property
    def fully_subscribed(self) -> bool:
        """Every pair of this connection acknowledged (or left out)."""
        return self.subscriptions.fully_subscribed

    @property
    def next_subscribe_at(self) -> float | None:
        """When the next subscribe request is due (time.monotonic()); None: all sent."""
        return self.subscriptions.next_request_at if self._ws is not None else None

    # --- writing ----------------------------------------------------------------------

    def open(self, req_id: int) -> None:
        """Connect and send the first subscribe request (of all pairs, unless batched)."""
        ws = websocket.create_connection(
            self.url,
            timeout=self.connect_timeout,
            skip_utf8_validation=True,  # the parser validates what it reads
            enable_multithread=False,
            class_=functools.partial(CappedWebSocket, max_message=self.max_message),
        )
        self._ws = ws
        self.stats.connections += 1
        ws.send(self.subscriptions.opened(time.monotonic(), req_id))

    def subscribe_next(self, req_id: int, now: float) -> bool:
        """Send the next subscribe request if it is due; True if one was sent.

        :raises ConnectionLost: when it cannot be sent.
        """
        if self._ws is None:
            return False
        request = self.subscriptions.next_request(now, req_id)
        if request is None:
            return False
        self._send([request], "subscribe")
        return True

    def resubscribe(self, pairs: Collection[str], req_id: int) -> bool:
        """Unsubscribe `pairs` and subscribe them again with a snapshot (their last 50 trades).

        See `Subscriptions.resubscribe`. Pairs this session does not hold are ignored.
        :returns: False when not connected (the next connection subscribes them anyway).
        :raises ConnectionLost: when the requests cannot be sent.
        """
        if self._ws is None:
            return False
        requests = self.subscriptions.resubscribe(pairs, req_id)
        if requests:
            self._send(requests, "resubscribe")
        return bool(requests)

    def _send(self, requests: list[str], what: str) -> None:
        ws = self._ws
        assert ws is not None
        try:
            for request in requests:
                ws.send(request)
        except _SOCKET_ERRORS as exc:
            raise ConnectionLost(f"{what} failed: {exc or type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the connection (quietly; it may be broken already)."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            ws.close(timeout=0.5)
        except _SOCKET_ERRORS:
            ws.shutdown()

    # --- reading ----------------------------------------------------------------------

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

    def check_heartbeat(self, now: float) -> None:
        """The heartbeat watchdog, for a connection `read` was not called on.

        :raises ConnectionLost: when nothing arrived for longer than `heartbeat_timeout`.
        """
        _raise(self.subscriptions.check_heartbeat(now))

    def check_silence(self, now: float) -> None:
        """Deprecated: `check_heartbeat` (the per-pair silence check is `feed.Feed`'s)."""
        warnings.warn(
            "KrakenSession.check_silence is renamed check_heartbeat",
            DeprecationWarning,
            stacklevel=2,
        )
        self.check_heartbeat(now)

    def read(self, timeout: float) -> list[Trade]:
        """The trades of the next frame and of the frames already waiting behind it.

        Waits up to `timeout` seconds; returns [] when nothing came.
        :raises ConnectionLost: on a close, an error, a server error or too long a silence.
        :raises SubscriptionRejected: when Kraken refuses a pair it never accepted.
        """
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        subscriptions = self.subscriptions
        trades: list[Trade] = []
        heard = timed_out = False
        ws.settimeout(min(timeout, subscriptions.heartbeat_timeout))
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
            except _SOCKET_ERRORS as exc:
                raise ConnectionLost(str(exc) or type(exc).__name__) from exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionLost(f"server closed the connection {_close_reason(frame)}")
            heard = True
            for event in parse_frame(frame, exact=self.exact):
                if isinstance(event, TradeBatch):
                    trades.extend(event.trades)
                elif not isinstance(event, (Heartbeat, Pong)):
                    self._on_event(event)
            if not _frame_waiting(ws):
                break
        now = time.monotonic()
        if heard:
            subscriptions.heard(now)
        if timed_out:
            _raise(subscriptions.check_heartbeat(now))
        return trades

    def _on_event(self, event: object) -> None:
        """An event other than trades: counted and logged, or the state machine's."""
        if isinstance(event, Malformed):
            self.stats.malformed += 1
            logger.warning(
                "Malformed input #%d (%s): %s", self.stats.malformed, event.reason, event.excerpt
            )
            return
        if isinstance(event, Status):
            _log_status(event, self.url)
        _raise(self.subscriptions.receive(event, time.monotonic()))


# the session's keywords before 0.2 -> `Subscriptions`' own
_PAIRS_OPTIONS = {
    "acknowledged": "acknowledged",
    "optional": "optional",
    "snapshot": "snapshot",
    "heartbeat_timeout": "heartbeat_timeout",
    "subscribe_batch": "batch",
    "subscribe_interval": "interval",
}


def _subscriptions_before_0_2(pairs: object, options: dict[str, Any]) -> Subscriptions:
    """The state machine of the form before 0.2: pairs and their options given to the session."""
    unknown = sorted(set(options) - set(_PAIRS_OPTIONS))
    if unknown or isinstance(pairs, Subscriptions):
        raise TypeError(
            f"KrakenSession got unexpected keyword arguments: {unknown or sorted(options)}"
        )
    warnings.warn(
        "KrakenSession(url, pairs, **options) is deprecated: pass a Subscriptions",
        DeprecationWarning,
        stacklevel=3,
    )
    return Subscriptions(
        pairs,  # type: ignore[arg-type]
        **{_PAIRS_OPTIONS[name]: value for name, value in options.items()},
    )


def _raise(outcome: object) -> None:
    """Raise what the state machine decided, if it ended the connection."""
    if isinstance(outcome, Reconnect):
        raise ConnectionLost(outcome.reason)
    if isinstance(outcome, Fatal):
        raise SubscriptionRejected(outcome.reason)


def _log_status(status: Status, url: str) -> None:
    if status.system == "online":
        logger.info(
            "Connected to %s (connection_id=%s, api %s, version %s)",
            url,
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
