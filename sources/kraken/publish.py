"""The core's output written down: trades and gap events to the source topic, positions to
the state, in an order that never lets the state run ahead of what was delivered.

`Publisher` is a plain object around three functions the source gives it, so tests drive it
with lists instead of a broker:

    produce(key, value, headers)   one source-topic message (serialized by the caller)
    deliver()                      block until every message produced so far is delivered
    save(positions)                write the positions to the state and commit it

Message shapes (the dataframe reads them, `steps.gaps.is_trades`): trades of one pair as a
JSON list of Kraken v2 trade objects with `timestamp_ms` and `origin` added; a gap event as a
JSON object (`gaps.gap_event`), written just before the pair's next trades; the end of a
`backfill_only` run as an empty list with a header saying how it ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .actions import Hole, Publish
from .gaps import GapEvents
from .positions import Position

__all__ = ["END_OF_BACKFILL_HEADER", "Publisher"]

END_OF_BACKFILL_HEADER = "kraken-trades-end-of-backfill"
Headers = list[tuple[str, bytes]]


class Publisher:
    """Writes what the core decided.

    :param produce: `(key, value, headers)` -> one source-topic message.
    :param deliver: waits until everything produced is delivered (the producer's flush).
    :param save: writes changed positions to the state and commits them.
    :param decimal_strings: prices and volumes as Kraken's decimal strings.
    :param on_live: told the exchange time (ms) of the newest trade of each live message
        (the publish-latency metric), or None.
    """

    def __init__(
        self,
        produce: Callable[[str, Any, Headers | None], None],
        deliver: Callable[[], None],
        save: Callable[[Mapping[str, Position]], None],
        *,
        decimal_strings: bool = False,
        on_live: Callable[[int], None] | None = None,
    ) -> None:
        self._produce = produce
        self._deliver = deliver
        self._save = save
        self.decimal_strings = decimal_strings
        self.on_live = on_live
        self._gaps = GapEvents()

    def trades(self, action: Publish) -> None:
        """A `Publish`: the pair's waiting gap event first (it takes the trades' time)."""
        gaps = self._gaps
        if gaps:
            self._gap(gaps.before(action.pair, action.trades[0].timestamp_ms))
        origin, decimal_strings = action.origin, self.decimal_strings
        self._produce(
            action.pair, [t.to_message(origin, decimal_strings) for t in action.trades], None
        )
        if origin == "ws" and self.on_live is not None:  # one observation per message
            self.on_live(action.trades[-1].timestamp_ms)

    def hole(self, hole: Hole, detected_at_ms: int) -> None:
        """A `Hole`: its gap event waits for the time of the pair's next trade in this round."""
        self._gap(self._gaps.hole(hole, detected_at_ms))

    def end_of_round(self) -> None:
        """The round of actions is over: the gap events no trade followed go out as they are."""
        for event in self._gaps.rest() if self._gaps else ():
            self._gap(event)

    def checkpoint(self, positions: Mapping[str, Position]) -> None:
        """Deliver what was produced, then record the positions it reached (never before)."""
        self._deliver()
        self._save(positions)

    def end_of_backfill(self, outcome: str) -> None:
        """The marker after a `backfill_only` run's last trade, saying how it ended."""
        self._produce("", [], [(END_OF_BACKFILL_HEADER, outcome.encode())])
        self._deliver()

    def _gap(self, event: dict[str, Any] | None) -> None:
        if event is not None:
            self._produce(event["pair"], event, None)
