"""Each pair's position (last published trade_id and its time), kept in the source's state.

The state format is `pair -> [trade_id, timestamp_ms]`, as every version of this source
wrote it, so an upgraded deployment resumes where the previous one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["restore_positions", "save_positions"]

logger = logging.getLogger(__name__)

Position = tuple[int, int]


def restore_positions(state: Any, pairs: Iterable[str]) -> dict[str, Position]:
    """The saved position of each pair that has one (state: the source's `State`)."""
    positions: dict[str, Position] = {}
    for pair in pairs:
        saved = state.get(pair)
        if not saved:
            continue
        try:
            positions[pair] = (int(saved[0]), int(saved[1]))
        except (TypeError, ValueError, IndexError):
            logger.warning("Ignoring an unreadable saved position of %s: %r", pair, saved)
    if positions:
        logger.info(
            "Resuming from the state: %s",
            ", ".join(f"{pair} after trade_id {pos[0]}" for pair, pos in positions.items()),
        )
    return positions


def save_positions(
    state: Any, positions: Mapping[str, Position], saved: dict[str, Position]
) -> bool:
    """Write the positions that moved since `saved` (updated in place); True if any did."""
    changed = False
    for pair, position in positions.items():
        if saved.get(pair) != position:
            state.set(pair, list(position))
            saved[pair] = position
            changed = True
    return changed
