"""Exponential backoff with full jitter, as Kraken's reconnection guide asks."""

from __future__ import annotations

import random

__all__ = ["Backoff", "ReconnectPolicy"]


class Backoff:
    """Delays of `uniform(0, min(cap, initial * factor**attempt))` seconds.

    :param initial: the ceiling of the first delay, seconds.
    :param factor: growth of the ceiling per attempt.
    :param cap: the largest ceiling, seconds (Kraken suggests 60).
    :param rng: a random source, for reproducible tests.
    """

    def __init__(
        self,
        initial: float = 1.0,
        factor: float = 2.0,
        cap: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or factor < 1 or cap < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and cap >= initial")
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.initial * self.factor**self.attempt)

    def next_delay(self) -> float:
        """The next delay; each call raises the ceiling until `cap`."""
        delay = self._rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over after a healthy connection."""
        self.attempt = 0


class ReconnectPolicy:
    """When to reconnect: the backoff grows until a connection has stayed healthy a while.

    A subscribe acknowledgement proves nothing: a server that acks and then drops would
    otherwise keep a client reconnecting about once a second (what gets an address banned).
    Only a connection that stayed up for `healthy_after` seconds resets the backoff.

    :param backoff: the delays (full jitter, capped).
    :param healthy_after: seconds a connection must last to count as healthy.
    """

    def __init__(self, backoff: Backoff, healthy_after: float = 30.0) -> None:
        self.backoff = backoff
        self.healthy_after = healthy_after
        self._connected_at: float | None = None

    def connected(self, now: float) -> None:
        """A connection is open (call once it is subscribed and reading)."""
        self._connected_at = now

    def next_delay(self, now: float) -> float:
        """The connection is gone: seconds to wait before the next attempt."""
        if self._connected_at is not None and now - self._connected_at >= self.healthy_after:
            self.backoff.reset()
        self._connected_at = None
        return self.backoff.next_delay()
