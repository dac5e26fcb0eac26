"""Exponential backoff with full jitter, as Kraken's reconnection guide asks."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


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
