"""When each connection of a group may (re)connect, sans I/O: driven by a clock value.

Two rules, both because Kraken's edge bans addresses that reconnect in storms:
- spacing: two attempts of the group, whichever connections they are for, are at least
  `spacing` seconds apart, so that N connections open one after the other at start and after
  a network blip (shards behind one address space theirs `shards` times as far apart:
  `app.shards.connect_spacing`);
- backoff: a connection lost (or never opened) waits its own `ReconnectPolicy` delay, full
  jitter growing until a connection lasted `healthy_after` seconds.

    schedule.next_to_open(now)   -> the connection whose turn it is (index), or None
    schedule.opened(i, now)      -> it is open
    schedule.lost(i, now)        -> it closed, failed or never opened: seconds until it may retry
    schedule.wake_at()           -> when `next_to_open` may next name one

Nothing here opens a socket, starts a thread or reads a clock; `connections.ConnectionGroup`
does, around it.
"""

from __future__ import annotations

import enum
import math
import random

from .backoff import Backoff, ReconnectPolicy

__all__ = ["CONNECT_SPACING", "ConnectSchedule"]

CONNECT_SPACING = 1.0  # seconds between two connection attempts of a group, at least


class _State(enum.Enum):
    WAITING = "waiting"  # closed: may be attempted once due
    CONNECTING = "connecting"  # an attempt is under way
    OPEN = "open"


class ConnectSchedule:
    """The (re)connect times of `count` connections that share one address.

    :param count: how many connections.
    :param spacing: seconds between two attempts of the group, at least.
    :param max_backoff: the cap of each connection's reconnect delay, seconds.
    :param healthy_after: seconds a connection must last before its backoff starts over.
    :param rng: the random source of the backoffs' jitter (tests).
    """

    def __init__(
        self,
        count: int,
        *,
        spacing: float = CONNECT_SPACING,
        max_backoff: float = 60.0,
        healthy_after: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.spacing = spacing
        self.policies = [
            ReconnectPolicy(Backoff(initial=1.0, cap=max_backoff, rng=rng), healthy_after)
            for _ in range(count)
        ]
        self._states = [_State.WAITING] * count
        self._due = [0.0] * count  # earliest time of each one's next attempt
        self._next_attempt = -math.inf  # earliest time of the group's next attempt

    def next_to_open(self, now: float) -> int | None:
        """The connection to attempt now (the longest due, then the first), or None.

        Naming one counts as an attempt: the next one comes `spacing` seconds later at least.
        """
        if now < self._next_attempt:
            return None
        waiting = [
            index
            for index, state in enumerate(self._states)
            if state is _State.WAITING and self._due[index] <= now
        ]
        if not waiting:
            return None
        index = min(waiting, key=self._due.__getitem__)
        self._states[index] = _State.CONNECTING
        self._next_attempt = now + self.spacing
        return index

    def opened(self, index: int, now: float) -> None:
        """Connection `index` is open (its backoff starts over once it lasts)."""
        self._states[index] = _State.OPEN
        self.policies[index].connected(now)

    def lost(self, index: int, now: float) -> float:
        """Connection `index` closed, failed or never opened: seconds until it may retry."""
        delay = self.policies[index].next_delay(now)
        self._states[index] = _State.WAITING
        self._due[index] = now + delay
        return delay

    def closed(self, index: int) -> None:
        """Connection `index` was closed on purpose: it may open again at once, no backoff."""
        self._states[index] = _State.WAITING

    def attempt(self, index: int) -> int:
        """How many times in a row connection `index` was lost (its backoff's attempt)."""
        return self.policies[index].backoff.attempt

    def due(self, index: int) -> float:
        """The earliest time of connection `index`'s next attempt (spacing aside)."""
        return self._due[index]

    def wake_at(self) -> float:
        """When `next_to_open` may next name a connection (inf: none is waiting)."""
        return min(
            (
                max(due, self._next_attempt)
                for due, state in zip(self._due, self._states, strict=True)
                if state is _State.WAITING
            ),
            default=math.inf,
        )
