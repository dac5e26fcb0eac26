"""The simulator's market, made cheap to run beside the contenders it feeds."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from simulator import Market, SimTrade

__all__ = ["BenchMarket", "PreparedTrade"]


@dataclass(frozen=True, slots=True)
class PreparedTrade(SimTrade):
    """A simulated trade whose WebSocket form was computed before the clock started."""

    ws: dict = field(default_factory=dict, compare=False)

    def to_ws(self) -> dict:
        return self.ws


class BenchMarket(Market):
    """The simulator's `Market`, made cheap to run beside the contenders.

    `prepare(n)` makes the next `n` trades ahead of time (the flood), so that during the
    measurement the simulator only frames and sends them. With `keep`, each pair's history
    is cut to its latest `keep` trades, so a long soak does not grow the bench itself.
    """

    def __init__(self, pairs: tuple[str, ...], *, keep: int | None = None) -> None:
        super().__init__(pairs, seed=1)
        self.keep = keep
        self._prepared: list[PreparedTrade] = []
        self._next = 0

    def prepare(self, n: int) -> None:
        """Make the next `n` trades now (stamped now); `next_trades` hands them out first."""
        self._prepared = [
            PreparedTrade(**{f: getattr(t, f) for f in _SIM_FIELDS}, ws=t.to_ws())
            for t in super().next_trades(n)
        ]
        self._next = 0

    def next_trades(self, n: int) -> list[SimTrade]:
        if self._next < len(self._prepared):
            trades = self._prepared[self._next : self._next + n]
            self._next += len(trades)
            return trades  # type: ignore[return-value]
        trades = super().next_trades(n)
        if self.keep is not None:
            self._forget(self.keep)
        return trades

    def _forget(self, keep: int) -> None:
        with self._lock:  # Market's own lock and lists: trim both alike
            for pair in self.pairs:
                history, times = self._history[pair], self._times[pair]
                if len(history) > 2 * keep:
                    del history[:-keep]
                    del times[:-keep]


_SIM_FIELDS = tuple(f.name for f in fields(SimTrade))
