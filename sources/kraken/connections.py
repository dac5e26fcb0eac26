"""Many pairs on the wire: the pairs spread over several WebSocket connections, one loop.

    plan_connections(pairs, 100)  ->  [pairs 1..100], [101..200], [201..300]   (balanced)
    each connection: subscribe requests of `subscribe_batch` symbols, SUBSCRIBE_INTERVAL apart
    ConnectionGroup.read(timeout)  ->  the trades of whichever connections have some

Each connection has its own reconnect backoff (`ReconnectPolicy`: full jitter, growing until a
connection lasted) and its own watchdog; when one fails, its pairs reconnect on their own
while the others flow on. Attempts of the whole group are at least `connect_spacing` seconds
apart, so that after a network blip N connections never reconnect in the same second
(Kraken's edge bans addresses that reconnect in storms), and at start they open one after
the other.

Opening a connection (DNS, TCP, TLS, HTTP upgrade: up to `connect_timeout`) runs on a
short-lived thread, so the loop keeps reading the other connections meanwhile. Reading stays
on the caller's thread: one open connection is read exactly as a single session always was
(a blocking read with a timeout); several are multiplexed with `poll`. Nothing is shared
with the opening threads but the session they hand over.
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

import websocket

from .backoff import Backoff, ReconnectPolicy
from .limits import DEFAULT_MAX_MESSAGE
from .session import (
    SUBSCRIBE_INTERVAL,
    ConnectionLost,
    KrakenSession,
    SessionStats,
    chunked,
)
from .text import printable
from .trade import Trade

__all__ = ["CONNECT_SPACING", "ConnectionGroup", "chunked", "plan_connections"]

logger = logging.getLogger(__name__)

CONNECT_SPACING = 1.0  # seconds between two connection attempts of the group, at least
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
    """One planned connection: its pairs, its backoff, its current session."""

    def __init__(self, index: int, pairs: tuple[str, ...], policy: ReconnectPolicy) -> None:
        self.index = index
        self.pairs = pairs
        self.pairset = frozenset(pairs)
        self.policy = policy
        self.session: KrakenSession | None = None  # set while open
        self.opener: _Opener | None = None  # set while being opened
        self.due = 0.0  # earliest time of the next attempt
        self.left_out_seen = 0


class ConnectionGroup:
    """The pairs over `ceil(len(pairs) / max_pairs_per_connection)` connections, read as one.

    :param url: the WebSocket endpoint.
    :param pairs: the v2 symbols to stream.
    :param stats: counters shared by every connection (malformed, reconnects, connections).
    :param max_pairs_per_connection: most pairs on one connection.
    :param subscribe_batch: most symbols in one subscribe request.
    :param optional: pairs from `all` or a pattern: one Kraken refuses is left out (logged),
        not fatal (`SubscriptionRejected` is raised only for the others).
    :param snapshot, exact, connect_timeout, heartbeat_timeout, max_message: as
        `KrakenSession`'s.
    :param max_backoff: the cap of each connection's reconnect delay, seconds.
    :param healthy_after: seconds a connection must last before its backoff starts over.
    :param connect_spacing: seconds between two connection attempts of the group, at least.
    :param subscribe_interval: seconds between two subscribe requests on one connection.
    :param idle_wait: how to wait when no connection is open (e.g. for REST pages).
    :param rng: the random source of the backoffs' jitter (tests).
    """

    def __init__(
        self,
        url: str,
        pairs: Sequence[str],
        *,
        stats: SessionStats,
        max_pairs_per_connection: int = 100,
        subscribe_batch: int = 50,
        optional: Collection[str] = (),
        snapshot: bool = True,
        exact: bool = False,
        connect_timeout: float = 10.0,
        heartbeat_timeout: float = 10.0,
        max_backoff: float = 60.0,
        healthy_after: float = 30.0,
        connect_spacing: float = CONNECT_SPACING,
        subscribe_interval: float = SUBSCRIBE_INTERVAL,
        idle_wait: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        max_message: int = DEFAULT_MAX_MESSAGE,
    ) -> None:
        if subscribe_batch < 1:
            raise ValueError("subscribe_batch must be at least 1")
        self.url = url
        self.pairs = tuple(pairs)
        self.stats = stats
        self.subscribe_batch = subscribe_batch
        self.optional = frozenset(optional)
        self.snapshot = snapshot
        self.exact = exact
        self.connect_timeout = connect_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.connect_spacing = connect_spacing
        self.subscribe_interval = subscribe_interval
        self.max_message = max_message
        self.left_out: dict[str, str] = {}  # optional pairs Kraken refused -> its error
        self.acknowledged: set[str] = set()  # pairs Kraken accepted at least once
        self._idle_wait = idle_wait
        self._connections = [
            _Connection(
                index,
                plan,
                ReconnectPolicy(Backoff(initial=1.0, cap=max_backoff, rng=rng), healthy_after),
            )
            for index, plan in enumerate(plan_connections(self.pairs, max_pairs_per_connection))
        ]
        self._open: list[_Connection] = []
        self._poll = select.poll()
        self._by_fd: dict[int, _Connection] = {}
        self._next_attempt = -math.inf
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
        return sum(len(conn.session.subscribed) for conn in self._open if conn.session)

    @property
    def sessions(self) -> tuple[KrakenSession, ...]:
        """The sessions of the connections open now."""
        return tuple(conn.session for conn in self._open if conn.session is not None)

    @property
    def pairs_wanted(self) -> int:
        """Pairs to stream: all of them but those Kraken refused (from a pattern)."""
        return len(self.pairs) - len(self.left_out)

    # --- the loop ---------------------------------------------------------------------

    def read(self, timeout: float) -> list[Trade]:
        """The trades that arrived on any connection, waiting up to `timeout` seconds.

        Opens and reopens connections as their time comes, sends the subscribe requests
        that are due, and watches every connection for silence.
        :raises SubscriptionRejected: Kraken refused a pair that is not optional.
        """
        if self._settled:
            open_ = self._open
            if len(open_) == 1:
                return self._read_one(open_[0], timeout)
            return self._read_many(open_, timeout)
        now = time.monotonic()
        self._collect_opened(now)
        self._start_attempt(now)
        self._send_subscribes(now)
        wait = max(MIN_WAIT, min(timeout, self._next_event(now) - now))
        open_ = self._open
        if not open_:
            self._idle_wait(wait)
            return []
        if len(open_) == 1:
            return self._read_one(open_[0], wait)
        return self._read_many(open_, wait)

    def resubscribe(self, pairs: Collection[str]) -> int:
        """Resubscribe `pairs` (with a snapshot) on the connections that hold them.

        :returns: how many connections got the request (closed ones subscribe on reopening).
        """
        sent = 0
        for conn in list(self._open):
            mine = [pair for pair in pairs if pair in conn.pairset]
            if not mine or conn.session is None:
                continue
            self._req_id += 1
            try:
                if conn.session.resubscribe(mine, self._req_id):
                    sent += 1
            except ConnectionLost as exc:
                self._lost(conn, exc, time.monotonic())
        return sent

    def close(self) -> None:
        """Close every connection (and those being opened, once they are)."""
        for conn in self._connections:
            if conn.opener is not None:
                conn.opener.abandon()
                conn.opener = None
            if conn.session is not None:
                self._unregister(conn)
                conn.session.close()
                conn.session = None
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
        if not self._complete or session.left_out:
            self._after_read(conn)
        return trades

    def _read_many(self, open_: list[_Connection], timeout: float) -> list[Trade]:
        ready: list[_Connection] = [conn for conn in open_ if conn.session.buffered()]  # type: ignore[union-attr]
        if not ready:
            events = self._poll.poll(timeout * 1000)
            ready = [self._by_fd[fd] for fd, _ in events if fd in self._by_fd]
        trades: list[Trade] = []
        for conn in ready:
            session = conn.session
            if session is None:
                continue
            try:
                trades.extend(session.read(READ_SLICE))
            except _LOST as exc:
                self._lost(conn, exc, time.monotonic())
                continue
            if not self._complete or session.left_out:
                self._after_read(conn)
        if len(ready) < len(open_):
            now = time.monotonic()
            for conn in list(open_):
                if conn in ready or conn.session is None:
                    continue
                try:
                    conn.session.check_silence(now)
                except ConnectionLost as exc:
                    self._lost(conn, exc, now)
        return trades

    def _after_read(self, conn: _Connection) -> None:
        """Take note of pairs left out and of every pair being subscribed."""
        session = conn.session
        assert session is not None
        if len(session.left_out) != conn.left_out_seen:
            conn.left_out_seen = len(session.left_out)
            self.left_out.update(session.left_out)
            conn.pairs = tuple(p for p in conn.pairs if p not in session.left_out)
            conn.pairset = frozenset(conn.pairs)
        if self._complete or not self._settled:
            return
        if all(c.session is not None and c.session.fully_subscribed for c in self._open):
            self._complete = True
            if len(self._connections) > 1:
                logger.info(
                    "All %d pairs subscribed on %d connections (%.1f s after start)%s",
                    self.pairs_subscribed,
                    len(self._open),
                    time.monotonic() - self._started,
                    f"; {len(self.left_out)} left out" if self.left_out else "",
                )

    # --- opening, subscribing, losing ---------------------------------------------------

    def _start_attempt(self, now: float) -> None:
        """Start opening the connection whose turn it is, if the group's spacing allows."""
        if now < self._next_attempt:
            return
        waiting = [
            c for c in self._connections if c.session is None and c.opener is None and c.due <= now
        ]
        if not waiting:
            return
        conn = min(waiting, key=lambda c: c.due)
        self._req_id += 1
        session = KrakenSession(
            self.url,
            conn.pairs,
            acknowledged=self.acknowledged,
            stats=self.stats,
            snapshot=self.snapshot,
            exact=self.exact,
            connect_timeout=self.connect_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            subscribe_batch=self.subscribe_batch,
            subscribe_interval=self.subscribe_interval,
            optional=self.optional & conn.pairset,
            max_message=self.max_message,
        )
        conn.opener = _Opener(session, self._req_id, f"kraken-connect-{conn.index + 1}")
        self._next_attempt = now + self.connect_spacing

    def _collect_opened(self, now: float) -> None:
        for conn in self._connections:
            opener = conn.opener
            if opener is None or not opener.done.is_set():
                continue
            conn.opener = None
            error = opener.error
            if error is None:
                conn.session = opener.session
                conn.policy.connected(now)
                self._open.append(conn)
                self._register(conn)
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
        soonest = math.inf
        for conn in self._connections:
            if conn.opener is not None:
                soonest = min(soonest, now + OPEN_POLL)
            elif conn.session is None:
                soonest = min(soonest, max(conn.due, self._next_attempt))
            elif (at := conn.session.next_subscribe_at) is not None:
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
            self._unregister(conn)
        conn.session = None
        self._settled = self._complete = False
        self.stats.reconnects += 1
        delay = conn.policy.next_delay(now)
        conn.due = now + delay
        where = (
            f" [connection {conn.index + 1}/{len(self._connections)}, {len(conn.pairs)} pairs]"
            if len(self._connections) > 1
            else ""
        )
        logger.log(
            getattr(exc, "level", logging.WARNING),  # an oversized message: ERROR
            "Disconnected from Kraken (connection_id=%s): %s; reconnecting in %.1f s "
            "(attempt %d)%s",
            session.connection_id if session else None,
            printable(exc or type(exc).__name__, 500),  # a handshake error quotes the server
            delay,
            conn.policy.backoff.attempt,
            where,
        )
        if session is not None:
            session.close()

    def _register(self, conn: _Connection) -> None:
        fd = conn.session.fileno() if conn.session else -1
        if fd >= 0:
            self._by_fd[fd] = conn
            self._poll.register(fd, select.POLLIN | select.POLLPRI)

    def _unregister(self, conn: _Connection) -> None:
        for fd, owner in list(self._by_fd.items()):
            if owner is conn:
                del self._by_fd[fd]
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._poll.unregister(fd)
