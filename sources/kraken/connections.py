"""Many pairs on the wire: the pairs spread over several WebSocket connections, one loop.

    plan_connections(pairs, 100)  ->  [pairs 1..100], [101..200], [201..300]   (balanced)
    each connection: subscribe requests of `subscribe_batch` symbols, SUBSCRIBE_INTERVAL apart
    ConnectionGroup.read(timeout)  ->  the trades of whichever connections have some

The decisions are sans-I/O and tested without a socket: when each connection may (re)connect
is `schedule.ConnectSchedule`'s (attempts of the group `connect_spacing` apart, each
connection's own reconnect backoff), what each one subscribes and what Kraken's answers mean
is its `subscriptions.Subscriptions`'. When one connection fails, its pairs reconnect on their
own while the others flow on.

This module is the I/O around them. Opening a connection (DNS, TCP, TLS, HTTP upgrade: up to
`connect_timeout`) runs on a short-lived thread, so the loop keeps reading the other
connections meanwhile. Reading stays on the caller's thread: one open connection is read
exactly as a single session always was (a blocking read with a timeout); several are
multiplexed with `poll`. Nothing is shared with the opening threads but the session they hand
over.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import select
import threading
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Any

import websocket

from .config import SourceConfig
from .schedule import CONNECT_SPACING, ConnectSchedule
from .session import ConnectionLost, KrakenSession, SessionStats
from .subscriptions import SUBSCRIBE_INTERVAL, Subscriptions, chunked
from .text import printable
from .trade import Trade

__all__ = [
    "CONNECT_SPACING",
    "ConnectionGroup",
    "chunked",
    "plan_connections",
    "plan_subscriptions",
]

logger = logging.getLogger(__name__)

OPEN_POLL = 0.05  # seconds between two looks at a connection being opened
READ_SLICE = 0.05  # seconds a ready connection may take to deliver the rest of a frame
MIN_WAIT = 0.001  # a read never waits 0 s (a socket timeout of 0 makes it non-blocking)
_LOST = (ConnectionLost, websocket.WebSocketException, OSError)


def plan_connections(pairs: Sequence[str], max_pairs_per_connection: int) -> list[tuple[str, ...]]:
    """`pairs` over `ceil(len / max)` connections whose sizes differ by one at most, in order.

    250 pairs at 100 per connection make 84 + 83 + 83, not 100 + 100 + 50: a reconnect costs
    each connection about the same, and none is close to the limit.
    """
    if max_pairs_per_connection < 1:
        raise ValueError("max_pairs_per_connection must be at least 1")
    pairs = tuple(pairs)
    if not pairs:
        return []
    count = math.ceil(len(pairs) / max_pairs_per_connection)
    size, extra = divmod(len(pairs), count)
    plan, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        plan.append(pairs[start:end])
        start = end
    return plan


def plan_subscriptions(
    pairs: Sequence[str],
    max_pairs_per_connection: int,
    optional: Collection[str] = (),
    **options: Any,
) -> list[Subscriptions]:
    """The `Subscriptions` of each planned connection (`plan_connections`).

    They share the set of pairs Kraken accepted at least once.
    :param optional: pairs from a pattern (left out, not fatal, when Kraken refuses them).
    :param options: the rest of `Subscriptions`' settings.
    """
    acknowledged: set[str] = set()
    optional = frozenset(optional)
    return [
        Subscriptions(
            plan, acknowledged=acknowledged, optional=optional.intersection(plan), **options
        )
        for plan in plan_connections(pairs, max_pairs_per_connection)
    ]


class _Opener:
    """Opens one session on a thread of its own; the loop collects it when `done`."""

    def __init__(self, session: KrakenSession, req_id: int, name: str) -> None:
        self.session = session
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._finished = False
        self._abandoned = False
        self._req_id = req_id
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self.session.open(self._req_id)
        except BaseException as exc:  # handed to the loop, which decides
            self.error = exc
        with self._lock:
            self._finished = True
            abandoned = self._abandoned
        if abandoned:
            self.session.close()
        self.done.set()

    def abandon(self) -> None:
        """Nobody will collect it: close the session once (or if already) opened."""
        with self._lock:
            self._abandoned = True
            finished = self._finished
        if finished:
            self.session.close()


class _Connection:
    """One planned connection: its pairs and their subscriptions, its current session."""

    def __init__(self, index: int, subscriptions: Subscriptions) -> None:
        self.index = index
        self.subscriptions = subscriptions
        self.pairs = subscriptions.pairs
        self.pairset = frozenset(self.pairs)
        self.session: KrakenSession | None = None  # set while open
        self.opener: _Opener | None = None  # set while being opened

    def collect(self) -> _Opener | None:
        """The opener of its session once it is done (opened or failed), else None."""
        opener = self.opener
        if opener is None or not opener.done.is_set():
            return None
        self.opener = None
        return opener

    def label(self, of: int) -> str:
        """Which connection it is, for the logs (nothing when it is the only one)."""
        if of == 1:
            return ""
        return f" [connection {self.index + 1}/{of}, {len(self.subscriptions.wanted)} pairs]"

    def close(self) -> bool:
        """Close its session, or the one being opened once it is; False if there was none."""
        opener, session = self.opener, self.session
        self.opener = self.session = None
        if opener is not None:
            opener.abandon()
        if session is not None:
            session.close()
        return opener is not None or session is not None


class _Poller:
    """Which open connections have something to read: `poll` on their sockets."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._by_fd: dict[int, _Connection] = {}

    def add(self, conn: _Connection) -> None:
        fd = conn.session.fileno() if conn.session else -1
        if fd >= 0:
            self._by_fd[fd] = conn
            self._poll.register(fd, select.POLLIN | select.POLLPRI)

    def remove(self, conn: _Connection) -> None:
        for fd, owner in list(self._by_fd.items()):
            if owner is conn:
                del self._by_fd[fd]
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._poll.unregister(fd)

    def ready(self, open_: list[_Connection], timeout: float) -> list[_Connection]:
        """The connections of `open_` with bytes waiting, after up to `timeout` seconds."""
        ready = [conn for conn in open_ if conn.session is not None and conn.session.buffered()]
        if ready:  # read already (TLS): `poll` would not see them
            return ready
        events = self._poll.poll(timeout * 1000)
        return [self._by_fd[fd] for fd, _ in events if fd in self._by_fd]


class ConnectionGroup:
    """The pairs over `ceil(len(pairs) / max_pairs_per_connection)` connections, read as one.

    :param config: the source's settings; the group reads its part of them: `ws_url`,
        `pairs`, `optional_pairs` (from `all` or a pattern: one Kraken refuses is left out,
        logged, not fatal), `snapshot`, `decimal_strings`, `connect_timeout`,
        `heartbeat_timeout`, `max_message`, `max_pairs_per_connection`, `subscribe_batch`,
        and the connect schedule's `connect_spacing`, `max_backoff`, `healthy_after`.
    :param stats: counters shared by every connection (malformed, reconnects, connections).
    :param idle_wait: how to wait when no connection is open (e.g. for REST pages).
    :param rng: the random source of the backoffs' jitter (tests).
    :param subscribe_interval: seconds between two subscribe requests on one connection.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        stats: SessionStats,
        idle_wait: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        subscribe_interval: float = SUBSCRIBE_INTERVAL,
    ) -> None:
        self.url = config.ws_url
        self.pairs = config.pairs
        self.stats = stats
        self._session = partial(
            KrakenSession,
            config.ws_url,
            stats=stats,
            exact=config.decimal_strings,
            connect_timeout=config.connect_timeout,
            max_message=config.max_message,
        )
        self._idle_wait = idle_wait
        planned = plan_subscriptions(
            self.pairs,
            config.max_pairs_per_connection,
            config.optional_pairs,
            snapshot=config.snapshot,
            batch=config.subscribe_batch,
            interval=subscribe_interval,
            heartbeat_timeout=config.heartbeat_timeout,
        )
        self._connections = [_Connection(index, plan) for index, plan in enumerate(planned)]
        self.schedule = ConnectSchedule(
            len(self._connections),
            spacing=config.connect_spacing,
            max_backoff=config.max_backoff,
            healthy_after=config.healthy_after,
            rng=rng,
        )
        self._open: list[_Connection] = []
        self._poller = _Poller()
        self._req_id = 0
        self._settled = False  # every connection open, every subscribe request sent
        self._complete = False  # every pair subscribed (logged once per recovery)
        self._started = time.monotonic()

    # --- what the source and its metrics read -----------------------------------------

    @property
    def connections(self) -> int:
        """How many connections the pairs are spread over."""
        return len(self._connections)

    @property
    def connections_open(self) -> int:
        """Connections open now."""
        return len(self._open)

    @property
    def pairs_subscribed(self) -> int:
        """Pairs acknowledged on the connections open now."""
        return sum(len(conn.subscriptions.subscribed) for conn in self._open)

    @property
    def sessions(self) -> tuple[KrakenSession, ...]:
        """The sessions of the connections open now."""
        return tuple(conn.session for conn in self._open if conn.session is not None)

    @property
    def left_out(self) -> dict[str, str]:
        """Pairs from a pattern that Kraken refused -> its error (not streamed)."""
        return {p: e for c in self._connections for p, e in c.subscriptions.left_out.items()}

    @property
    def pairs_wanted(self) -> int:
        """Pairs to stream: all of them but those Kraken refused (from a pattern)."""
        return sum(len(conn.subscriptions.wanted) for conn in self._connections)

    # --- the loop ---------------------------------------------------------------------

    def read(self, timeout: float) -> list[Trade]:
        """The trades that arrived on any connection, waiting up to `timeout` seconds.

        Opens and reopens connections as their time comes, sends the subscribe requests
        that are due, and watches every connection for silence.
        :raises SubscriptionRejected: Kraken refused a pair that is not optional.
        """
        if not self._settled:  # connections to open or subscribe requests to send
            now = time.monotonic()
            self._collect_opened(now)
            self._start_attempt(now)
            self._send_subscribes(now)
            timeout = max(MIN_WAIT, min(timeout, self._next_event(now) - now))
            if not self._open:
                self._idle_wait(timeout)
                return []
        open_ = self._open
        if len(open_) == 1:
            return self._read_one(open_[0], timeout)
        return self._read_many(open_, timeout)

    def resubscribe(self, pairs: Collection[str]) -> int:
        """Resubscribe `pairs` (with a snapshot) on the connections that hold them.

        :returns: how many connections got the request (closed ones subscribe on reopening).
        """
        sent = 0
        for conn in list(self._open):
            if conn.session is None or conn.pairset.isdisjoint(pairs):
                continue
            self._req_id += 1
            try:
                if conn.session.resubscribe(pairs, self._req_id):
                    sent += 1
            except ConnectionLost as exc:
                self._lost(conn, exc, time.monotonic())
        return sent

    def close(self) -> None:
        """Close every connection (and those being opened, once they are)."""
        for conn in self._connections:
            self._poller.remove(conn)
            if conn.close():
                self.schedule.closed(conn.index)
        self._open = []
        self._settled = False

    # --- reading ----------------------------------------------------------------------

    def _read_one(self, conn: _Connection, timeout: float) -> list[Trade]:
        session = conn.session
        assert session is not None
        try:
            trades = session.read(timeout)
        except _LOST as exc:
            self._lost(conn, exc, time.monotonic())
            return []
        if not self._complete:
            self._note_complete()
        return trades

    def _read_many(self, open_: list[_Connection], timeout: float) -> list[Trade]:
        ready = self._poller.ready(open_, timeout)
        trades: list[Trade] = []
        for conn in ready:
            session = conn.session
            if session is None:
                continue
            try:
                trades.extend(session.read(READ_SLICE))
            except _LOST as exc:
                self._lost(conn, exc, time.monotonic())
        if len(ready) < len(open_):
            self._check_heartbeats([conn for conn in open_ if conn not in ready])
        if not self._complete:
            self._note_complete()
        return trades

    def _check_heartbeats(self, unread: list[_Connection]) -> None:
        """The watchdog of the connections that had nothing to read."""
        now = time.monotonic()
        for conn in unread:
            if conn.session is None:
                continue
            try:
                conn.session.check_heartbeat(now)
            except ConnectionLost as exc:
                self._lost(conn, exc, now)

    def _note_complete(self) -> None:
        """Once every pair is subscribed (again): one line, when the pairs are spread."""
        if not self._settled or not all(c.subscriptions.fully_subscribed for c in self._open):
            return
        self._complete = True
        if len(self._connections) > 1:
            left_out = self.left_out
            logger.info(
                "All %d pairs subscribed on %d connections (%.1f s after start)%s",
                self.pairs_subscribed,
                len(self._open),
                time.monotonic() - self._started,
                f"; {len(left_out)} left out" if left_out else "",
            )

    # --- opening, subscribing, losing ---------------------------------------------------

    def _start_attempt(self, now: float) -> None:
        """Start opening the connection whose turn it is, if the schedule says one's is."""
        index = self.schedule.next_to_open(now)
        if index is None:
            return
        conn = self._connections[index]
        self._req_id += 1
        session = self._session(conn.subscriptions)
        conn.opener = _Opener(session, self._req_id, f"kraken-connect-{conn.index + 1}")

    def _collect_opened(self, now: float) -> None:
        for conn in self._connections:
            opener = conn.collect()
            if opener is None:
                continue
            error = opener.error
            if error is None:
                conn.session = opener.session
                self.schedule.opened(conn.index, now)
                self._open.append(conn)
                self._poller.add(conn)
            elif isinstance(error, _LOST):
                self._lost(conn, error, now, opener.session)
            else:
                raise error
        self._settled = len(self._open) == len(self._connections) and not any(
            c.session is not None and c.session.next_subscribe_at is not None for c in self._open
        )

    def _send_subscribes(self, now: float) -> None:
        for conn in list(self._open):
            session = conn.session
            if session is None or session.next_subscribe_at is None:
                continue
            try:
                if session.subscribe_next(self._req_id + 1, now):
                    self._req_id += 1
            except ConnectionLost as exc:
                self._lost(conn, exc, now)

    def _next_event(self, now: float) -> float:
        """When the loop must next act on its own (an attempt, an opening, a request)."""
        soonest = self.schedule.wake_at()
        for conn in self._connections:
            if conn.opener is not None:
                soonest = min(soonest, now + OPEN_POLL)
            elif conn.session is not None and (at := conn.session.next_subscribe_at) is not None:
                soonest = min(soonest, at)
        return soonest

    def _lost(
        self,
        conn: _Connection,
        exc: BaseException,
        now: float,
        session: KrakenSession | None = None,
    ) -> None:
        """The connection closed, failed or went silent (or never opened): back off."""
        session = session or conn.session
        if conn in self._open:
            self._open.remove(conn)
            self._poller.remove(conn)
        conn.session = None
        self._settled = self._complete = False
        self.stats.reconnects += 1
        delay = self.schedule.lost(conn.index, now)
        logger.log(
            getattr(exc, "level", logging.WARNING),  # an oversized message: ERROR
            "Disconnected from Kraken (connection_id=%s): %s; reconnecting in %.1f s "
            "(attempt %d)%s",
            session.connection_id if session else None,
            printable(exc or type(exc).__name__, 500),  # a handshake error quotes the server
            delay,
            self.schedule.attempt(conn.index),
            conn.label(len(self._connections)),
        )
        if session is not None:
            session.close()
