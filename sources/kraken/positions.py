"""Each pair's position (last published trade_id and its time), kept in the source's state.

The state format is `pair -> [trade_id, timestamp_ms]`, as every version of this source
wrote it, so an upgraded deployment resumes where the previous one stopped.

A pair without a saved position (a new consumer group, a new shard count, a state that was
reset) starts from the last trade of it already written (in the output topic, or in the
source topic for the dataframe to publish), so the difference is repaired from REST instead
of skipped; only a pair never written starts at its first live trade.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Position", "latest", "restore_positions", "save_positions", "starting_positions"]

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


def latest(*found: Mapping[str, Position]) -> dict[str, Position]:
    """Each pair's position with the highest trade_id among `found` (e.g. the last trades in
    the output topic and in the source topic)."""
    positions: dict[str, Position] = {}
    for each in found:
        for pair, position in each.items():
            if pair not in positions or position[0] > positions[pair][0]:
                positions[pair] = position
    return positions


def starting_positions(
    saved: Mapping[str, Position], output: Mapping[str, Position]
) -> dict[str, Position]:
    """Where each pair starts: its saved position, else the last trade of it already written
    (`output`: in the output topic, or in the source topic for the dataframe to publish).

    The saved position wins: it is what the source itself published (the output may lag
    behind it, never lead it, while the state lives). A pair found only in the output is
    logged, so a user sees why REST is asked for trades after a change of shards or group.
    """
    positions = dict(saved)
    from_output = {pair: pos for pair, pos in output.items() if pair not in positions}
    if from_output:
        logger.info(
            "No saved position for %s: starting from the last trade of each already written "
            "(in the output topic, or in the source topic for the dataframe to publish; any "
            "trade after it is fetched from REST, never skipped)",
            ", ".join(f"{pair} (trade_id {pos[0]})" for pair, pos in from_output.items()),
        )
    positions.update(from_output)
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
