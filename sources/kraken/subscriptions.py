"""The subscriptions of one connection to Kraken v2, sans I/O: asked, acknowledged, refused.

The way `websockets` keeps its protocol apart from its sockets: protocol events go in
(`receive`, fed from `protocol.parse_frame`), the requests to send and what happened come
out. Nothing here touches a socket, starts a thread or reads a clock: whatever needs the time
takes `now`. `session.KrakenSession` is the I/O around it.

    opened(now, req_id)        -> the first subscribe request (all pairs, or the first batch)
    next_request(now, req_id)  -> the next batch's request, once it is due (`next_request_at`)
    receive(event, now)        -> Subscribed | LeftOut | Fatal | Reconnect | None
    resubscribe(pairs, req_id) -> unsubscribe + subscribe with a snapshot (a silent pair)
    check_heartbeat(now)       -> Reconnect after `heartbeat_timeout` without any message

What is fatal: Kraken refusing a pair it never accepted that was named explicitly (a
configuration error). A pair from a pattern that it refuses is left out (for good: later
connections do not ask for it again). A refusal of a pair accepted before, a server error or
a silence is a reason to reconnect.

One object lasts as long as its planned connection, across reconnects: what was refused
stays refused; what is subscribed, pending or being resubscribed starts over at `opened`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .protocol import (
    ServerError,
    Status,
    SubscribeAck,
    SubscribeError,
    subscribe_request,
    unsubscribe_request,
)
from .text import printable

__all__ = [
    "SUBSCRIBE_INTERVAL",
    "Fatal",
    "LeftOut",
    "Outcome",
    "Reconnect",
    "Subscribed",
    "Subscriptions",
    "chunked",
]

logger = logging.getLogger(__name__)

# Seconds between two subscribe requests on one connection. Kraken answers requests sent too
# fast with {"Error":"Exceeded msg rate"} (its support has quoted about 20 messages a second
# per connection; the limit is not documented): two a second stays far below it.
SUBSCRIBE_INTERVAL = 0.5
ACK_LOG_LIMIT = 10  # a connection of more pairs logs one line when all are subscribed


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Kraken acknowledged a pair: `again` when it had before, `resubscribed` when this
    answers `Subscriptions.resubscribe`."""

    symbol: str
    again: bool = False
    resubscribed: bool = False


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Kraken refused a pair from a pattern that it never accepted: not streamed, not fatal."""

    symbol: str
    error: str


@dataclass(frozen=True, slots=True)
class Fatal:
    """Kraken refused a named pair it never accepted: a configuration error; stop."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    """This connection is no good any more (a refusal, a server error, a silence): reopen."""

    reason: str


Outcome = Subscribed | LeftOut | Fatal | Reconnect


class Subscriptions:
    """Which of one connection's pairs are asked, acknowledged, refused, being resubscribed.

    :param pairs: the Kraken v2 symbols of the connection.
    :param acknowledged: pairs Kraken accepted at least once, shared by the connections of a
        group (a new set when None): a later refusal of one of them means reconnect, not stop.
    :param optional: pairs that came from `all` or a pattern: one Kraken refuses before ever
        accepting it is left out (`LeftOut`) instead of being `Fatal`.
    :param snapshot: ask for the last 50 trades of each pair on subscribing.
    :param batch: most symbols per subscribe request (0: all in one); the requests after the
        first are due `interval` seconds apart (`next_request`).
    :param heartbeat_timeout: seconds without any message before the connection is given up.
    """

    def __init__(
        self,
        pairs: Collection[str],
        *,
        acknowledged: set[str] | None = None,
        optional: Collection[str] = (),
        snapshot: bool = True,
        batch: int = 0,
        interval: float = SUBSCRIBE_INTERVAL,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.pairs = tuple(pairs)
        self.acknowledged = acknowledged if acknowledged is not None else set()
        self.optional = frozenset(optional)
        self.snapshot = snapshot
        self.batch = batch
        self.interval = interval
        self.heartbeat_timeout = heartbeat_timeout
        self.left_out: dict[str, str] = {}  # optional pairs Kraken refused -> its error
        self._ack_level = logging.INFO if len(self.pairs) <= ACK_LOG_LIMIT else logging.DEBUG
        # the current connection's; `opened` starts them over
        self.connection_id: int | None = None
        self.subscribed: set[str] = set()
        self.opened_at = 0.0
        self.last_heard = 0.0
        self._resubscribing: set[str] = set()
        self._pending: list[tuple[str, ...]] = []  # subscribe requests not due yet
        self._next_request = 0.0
        self._complete_logged = False

    @property
    def wanted(self) -> tuple[str, ...]:
        """The pairs to ask for: all of them but those left out."""
        left_out = self.left_out
        return tuple(p for p in self.pairs if p not in left_out) if left_out else self.pairs

    @property
    def fully_subscribed(self) -> bool:
        """Every pair acknowledged on the current connection (or left out)."""
        return len(self.subscribed) + len(self.left_out) >= len(self.pairs)

    # --- requests ---------------------------------------------------------------------

    def opened(self, now: float, req_id: int) -> str:
        """A new connection is open: start its state over; the first request to send."""
        self.connection_id = None
        self.subscribed = set()
        self._resubscribing = set()
        self._complete_logged = False
        self.opened_at = self.last_heard = now
        chunks = chunked(self.wanted, self.batch) or [()]
        first, self._pending = chunks[0], chunks[1:]
        self._next_request = now + self.interval
        return subscribe_request(first, snapshot=self.snapshot, req_id=req_id)

    @property
    def next_request_at(self) -> float | None:
        """When the next subscribe request is due; None: all are sent."""
        return self._next_request if self._pending else None

    def next_request(self, now: float, req_id: int) -> str | None:
        """The next subscribe request if it is due (None: not yet, or nothing left to ask)."""
        if not self._pending or now < self._next_request:
            return None
        chunk = tuple(p for p in self._pending.pop(0) if p not in self.left_out)
        self._next_request = now + self.interval
        return subscribe_request(chunk, snapshot=self.snapshot, req_id=req_id) if chunk else None

    def resubscribe(self, pairs: Collection[str], req_id: int) -> list[str]:
        """Unsubscribe `pairs` and subscribe them again with a snapshot: the requests to send.

        The check for a subscription gone silent (see `feed.Feed`): Kraken refuses a second
        subscribe of a subscribed pair ("Already subscribed"), so the unsubscribe goes first,
        on the same connection, which Kraken reads in order. The snapshot is asked for even
        when `snapshot` is off: it is the answer. The new acknowledgements are logged at DEBUG
        level and, like any acknowledgement, reset nothing (the reconnect backoff counts
        connections that lasted, not acks). Pairs not of this connection are ignored.

        :returns: [] when none of `pairs` is of this connection.
        """
        mine = [pair for pair in pairs if pair in self.pairs]
        if not mine:
            return []
        self._resubscribing.update(mine)
        logger.debug("Resubscribing to %d pairs (req_id=%d)", len(mine), req_id)
        return [
            unsubscribe_request(mine, req_id=req_id),
            subscribe_request(mine, snapshot=True, req_id=req_id),
        ]

    # --- what arrives -----------------------------------------------------------------

    def heard(self, now: float) -> None:
        """A message arrived (any: trades, a heartbeat, an answer): the connection is alive."""
        self.last_heard = now

    def check_heartbeat(self, now: float) -> Reconnect | None:
        """The watchdog: `Reconnect` when nothing arrived for longer than `heartbeat_timeout`."""
        silent = now - self.last_heard
        if silent > self.heartbeat_timeout:
            return Reconnect(f"no message for {silent:.1f} s")
        return None

    def receive(self, event: object, now: float) -> Outcome | None:
        """Take in one protocol event (any `protocol.Event`); what it means, if anything."""
        self.last_heard = now
        if isinstance(event, SubscribeAck):
            return self._on_ack(event, now)
        if isinstance(event, SubscribeError):
            return self._on_refusal(event, now)
        if isinstance(event, Status):
            self.connection_id = event.connection_id  # Kraken's name for it, in the logs
        elif isinstance(event, ServerError):
            return Reconnect(f"Kraken error: {event.error}")
        return None

    def _on_ack(self, ack: SubscribeAck, now: float) -> Subscribed | None:
        symbol = ack.symbol
        if symbol is None:
            return None
        if ack.method == "unsubscribe":
            if symbol not in self._resubscribing:  # in a resubscribe it counts as subscribed
                self.subscribed.discard(symbol)
            return None
        if ack.method != "subscribe":
            return None
        again = symbol in self.acknowledged
        self.acknowledged.add(symbol)
        self.subscribed.add(symbol)
        self._note_complete(now)
        if symbol in self._resubscribing:
            self._resubscribing.discard(symbol)
            logger.debug("Resubscribed to %s trades (connection_id=%s)", symbol, self.connection_id)
            return Subscribed(symbol, again, resubscribed=True)
        logger.log(
            self._ack_level,
            "Subscribed to %s trades (connection_id=%s)%s",
            symbol,
            self.connection_id,
            " again" if again else "",
        )
        return Subscribed(symbol, again)

    def _on_refusal(self, error: SubscribeError, now: float) -> Outcome | None:
        if error.method != "subscribe":
            logger.warning(
                "Kraken refused to %s %s: %s", error.method, printable(error.symbol), error.error
            )
            return None
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
            self._note_complete(now)
            return LeftOut(symbol, error.error)
        if never_accepted:
            named = symbol or ", ".join(self.wanted)
            return Fatal(f"Kraken rejected the subscription to {named}: {error.error}")
        return Reconnect(
            f"Kraken refused to subscribe {printable(symbol or 'a pair')}: {error.error}"
        )

    def _note_complete(self, now: float) -> None:
        """Once per connection of many pairs: one line when all of them are subscribed."""
        if self._complete_logged or self._pending or not self.fully_subscribed:
            return
        self._complete_logged = True
        if self._ack_level != logging.INFO:  # few pairs: each was logged on its own
            logger.info(
                "Subscribed to all %d pairs of this connection (connection_id=%s) in %.1f s%s",
                len(self.subscribed),
                self.connection_id,
                now - self.opened_at,
                f", {len(self.left_out)} left out" if self.left_out else "",
            )


def chunked(pairs: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """`pairs` in subscribe requests of `size` symbols at most (0: all in one request)."""
    pairs = tuple(pairs)
    if size <= 0:
        return [pairs] if pairs else []
    return [pairs[start : start + size] for start in range(0, len(pairs), size)]
