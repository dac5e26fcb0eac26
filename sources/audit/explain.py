"""Holes and the gap events that explain them. No I/O.

The pipeline writes a gap event (gaps topic, schemas/gap.v1.json) for each range of trade_ids
it gave up, with its reason. A hole the audit finds is *explained* when gap events of its pair
cover every one of its trade_ids; its reasons and details are then theirs. A hole only partly
covered stays unexplained (its text says which events touch it). Gap events are few (one per
unrepairable hole), so they are all kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .findings import Findings, Hole, Invalid
from .schema import gap_errors

__all__ = ["GapEvent", "GapEvents"]


@dataclass(frozen=True, slots=True)
class GapEvent:
    """One gap event: `first_id..last_id` of `pair` given up, and why."""

    pair: str
    first_id: int
    last_id: int
    reason: str
    detail: str


class GapEvents:
    """The gap events read from the gaps topic, by pair.

    :ivar invalid: events that do not validate against gap.v1 (they explain nothing).
    :ivar found: False when there was no gaps topic to read.
    """

    def __init__(self, max_findings: int = 1000, *, found: bool = True) -> None:
        self.by_pair: dict[str, list[GapEvent]] = defaultdict(list)
        self.invalid: Findings[Invalid] = Findings(max_findings)
        self.found = found
        self.read = 0

    def add(self, value: Any, partition: int = 0, offset: int = 0) -> None:
        """One gap event as read (a parsed JSON value)."""
        self.read += 1
        errors = gap_errors(value)
        if errors:
            pair = value.get("pair") if isinstance(value, dict) else None
            self.invalid.add(
                Invalid(
                    partition, offset, None, pair if isinstance(pair, str) else None, tuple(errors)
                )
            )
            return
        self.by_pair[value["pair"]].append(
            GapEvent(
                value["pair"],
                value["first_trade_id"],
                value["last_trade_id"],
                value["reason"],
                value["detail"],
            )
        )

    def explain(self, pair: str, holes: Iterable[Hole]) -> None:
        """Mark each hole of `pair` explained when its pair's events cover all of it."""
        events = sorted(self.by_pair.get(pair, ()), key=lambda e: (e.first_id, e.last_id))
        for hole in holes:
            touching = [
                e for e in events if e.first_id <= hole.last_id and e.last_id >= hole.first_id
            ]
            if touching and _covers(touching, hole.first_id, hole.last_id):
                hole.reasons = tuple(dict.fromkeys(e.reason for e in touching))
                hole.detail = "; ".join(dict.fromkeys(e.detail for e in touching))
            elif touching:
                ranges = ", ".join(f"{e.first_id}..{e.last_id}" for e in touching)
                hole.detail = f"gap events cover only part of it ({ranges})"

    def unmatched(self, pair: str, low: int, high: int, holes: Iterable[Hole]) -> list[GapEvent]:
        """Events of `pair` within the audited `low..high` that touch no hole: the topic holds
        trades the pipeline said it gave up (written later, or a wrong event)."""
        spans = [(h.first_id, h.last_id) for h in holes]
        return [
            e
            for e in self.by_pair.get(pair, ())
            if e.first_id >= low
            and e.last_id <= high
            and not any(e.first_id <= b and e.last_id >= a for a, b in spans)
        ]


def _covers(events: list[GapEvent], first: int, last: int) -> bool:
    """Whether the events (sorted by first id) together cover `first..last`."""
    reached = first - 1
    for event in events:
        if event.first_id > reached + 1:
            return False
        reached = max(reached, event.last_id)
        if reached >= last:
            return True
    return reached >= last
