"""What the audit finds, as plain data: holes, runs of trade_ids, records that disagree.

Every kind goes into a `Findings` list that keeps the first `limit` items and counts them all,
so that a topic with millions of defects costs the audit no more memory than a clean one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "Findings",
    "Hole",
    "Invalid",
    "KeyMismatch",
    "RestMismatch",
    "Run",
    "TimeMismatch",
]

T = TypeVar("T")


class Findings(Generic[T]):
    """The first `limit` findings of one kind, and how many there were in all."""

    __slots__ = ("items", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.items: list[T] = []
        self.limit = limit
        self.total = 0

    def add(self, item: T) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(item)

    def extend(self, other: Findings[T]) -> None:
        """Add another list's findings (all counted, kept up to `limit`)."""
        self.total += other.total
        self.items.extend(other.items[: max(0, self.limit - len(self.items))])

    @property
    def truncated(self) -> bool:
        return self.total > len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(item) for item in self.items]  # type: ignore[call-overload]


@dataclass(slots=True)
class Hole:
    """Trade_ids `first_id..last_id` of a pair that the topic lacks, between two it holds.

    :param previous_ms: time of the trade before the hole; `next_ms`: of the one after it.
    :param reasons: the gap events' reasons that account for every id of it; empty: none do.
    :param detail: the gap events' detail text, as the pipeline wrote it.
    :param rest_served: with `--verify-rest`, how many of its trades Kraken's REST serves
        (0: Kraken lacks them too); None when not checked.
    """

    first_id: int
    last_id: int
    previous_ms: int | None
    next_ms: int | None
    reasons: tuple[str, ...] = ()
    detail: str = ""
    rest_served: int | None = None

    @property
    def count(self) -> int:
        return self.last_id - self.first_id + 1

    @property
    def explained(self) -> bool:
        return bool(self.reasons)


@dataclass(slots=True)
class Run:
    """Consecutive trade_ids `first_id..last_id` that arrived the same wrong way.

    :param after_id: for trade_ids out of order, the higher trade_id the reader had already
        seen when they arrived; None for duplicates.
    :param partition: where the run's first record is; `offset` likewise.
    """

    first_id: int
    last_id: int
    partition: int
    offset: int
    after_id: int | None = None

    @property
    def count(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class TimeMismatch:
    """A record whose times disagree: its Kafka timestamp, `timestamp_ms`, `timestamp`."""

    trade_id: int | None
    partition: int
    offset: int
    kafka_timestamp_ms: int
    timestamp_ms: Any
    timestamp: Any


@dataclass(frozen=True, slots=True)
class KeyMismatch:
    """A record whose Kafka key is not its pair (`key`: as text, None when it has none)."""

    trade_id: int | None
    partition: int
    offset: int
    key: str | None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that does not validate against trade.v1 (or is not JSON at all)."""

    partition: int
    offset: int
    trade_id: int | None
    pair: str | None
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RestMismatch:
    """A field of a trade whose value in the topic is not what Kraken's REST serves."""

    trade_id: int
    field: str
    topic: Any
    rest: Any
