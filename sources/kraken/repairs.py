"""A pair's REST work: what it fetches, where it stands, and how long it has been waiting.

A `Repair` never gives up on its own: a failed or empty answer is a delay, retried with a
capped backoff. How long it has gone without advancing (`stalled_for`) is what the core
reports: a WARNING when the wait starts and each time it doubles, an ERROR and `/readyz` 503
past `STALLED_AFTER`, and a metric all along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = ["STALLED_AFTER", "Repair", "RepairKind"]

NS_PER_MS = 1_000_000
STALLED_AFTER = 300.0  # seconds without progress before a repair makes the pipeline unready
FIRST_LOOKBACK_NS = 1_000_000_000  # an answer with no row before the jump: look 1 s back...
LOOKBACK_FACTOR = 16  # ... then 16 s, 4 min, 1 h, 18 h, 12 days, ... then from the start


class RepairKind(IntEnum):
    """What a repair is for; the lower value gets the REST budget first."""

    CHECK = 0  # a pair's trade_ids went back: does Kraken's REST confirm the new sequence?
    GAP = 1  # live trades are held behind it
    BACKFILL = 2  # `backfill_since`: a pair's past, before its live trades


@dataclass(slots=True)
class Repair:
    """REST work for one lane.

    :param kind: what it is for.
    :param started_at: monotonic time it started.
    :param first_missing: the first trade_id it must bring (None for a history's start).
    :param start_ms: the time it starts from, epoch ms (for progress and ETA).
    :param backfill_since_ns: a history's first `since` (used while the pair has no position).
    """

    kind: RepairKind
    started_at: float
    first_missing: int | None = None
    start_ms: int | None = None
    backfill_since_ns: int | None = None
    chasing: bool = False  # the held trades were let go: REST brings them, up to `chase_to`
    chase_to: int | None = None  # the last trade_id received (and let go) while chasing
    lookback_ns: int = 0  # an answer had no row before its jump: ask from this much earlier
    floor_ns: int = 0  # a full page made no progress: the next `since` is at least this
    broken_reads: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # answers in a row that brought nothing
    retry_at: float = 0.0  # monotonic time before which it is not scheduled
    advanced_at: float = 0.0  # monotonic time it last published or proved something
    last_said: str = ""  # what Kraken's REST last said when it brought nothing
    fetched: int = 0  # trades published from REST
    warned_after: float = 0.0  # the stall age of the last WARNING (doubles)
    stalled: bool = False  # past STALLED_AFTER without progress (reported)

    def __post_init__(self) -> None:
        self.advanced_at = self.started_at

    def describe(self, target: int | None) -> str:
        """`gap 101..150`, `history`, `catch-up` or `sequence check`, for the log."""
        if self.kind is RepairKind.BACKFILL:
            return "backfill"
        if self.kind is RepairKind.CHECK:
            return "sequence check"
        if self.chasing:
            return f"catch-up {self.first_missing}..{target}"
        if target is None:
            return f"catch-up from trade_id {self.first_missing}"
        return f"gap {self.first_missing}..{target}"

    def since_ns(self, position: tuple[int, int] | None) -> int:
        """The `since` of the next request: from just before the position's time (so the
        answer starts with a trade already accounted for), or further back when asked."""
        if position is None:
            return max(self.backfill_since_ns or 0, 0)
        since = position[1] * NS_PER_MS - 1 - self.lookback_ns
        return max(since, self.floor_ns, 0)

    def advanced(self, now: float) -> float | None:
        """Progress: the wait is over. Returns how long it lasted if it was reported (a
        failure was: its WARNING gets this answer)."""
        waited = now - self.advanced_at if self.failures else None
        self.advanced_at = now
        self.failures = 0
        self.lookback_ns = 0
        self.warned_after = 0.0
        self.stalled = False
        self.last_said = ""
        return waited

    def look_further_back(self, since_ns: int) -> bool:
        """The answer to `since_ns` had no row before its jump: widen the look back. False
        when `since_ns` was 0 already (nothing is before it)."""
        if since_ns <= 0:
            return False
        self.lookback_ns = (
            FIRST_LOOKBACK_NS if not self.lookback_ns else self.lookback_ns * LOOKBACK_FACTOR
        )
        return True

    def failed(self, said: str, now: float, initial: float, cap: float) -> float:
        """An answer brought nothing: wait before the next. Returns the delay, seconds."""
        self.failures += 1
        self.last_said = said
        delay = min(cap, initial * 2 ** min(self.failures - 1, 32))
        self.retry_at = now + delay
        return delay

    def stalled_for(self, now: float) -> float:
        """Seconds since it last advanced."""
        return now - self.advanced_at
