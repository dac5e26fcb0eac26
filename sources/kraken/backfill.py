"""`backfill_only`: the finite run that fetches each pair's history up to now, then stops.

It ends in one of `BACKFILL_OUTCOMES`, written as the end marker after the last trade
(`Publisher.end_of_backfill`): the application stops once the dataframe has seen it, so
every trade fetched is in the output before the exit code says how the backfill ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .engine import Engine

__all__ = ["BACKFILL_OUTCOMES", "run_backfill", "where_stopped"]

logger = logging.getLogger(__name__)

# complete; backfill_deadline passed; Kraken's REST cannot serve a pair (or is not Kraken)
BACKFILL_OUTCOMES = ("complete", "deadline", "rest_unusable")


def run_backfill(engine: Engine, running: Callable[[], bool]) -> None:
    """Fetch every pair's history up to now (or the deadline), mark the end, then wait to be
    stopped (the application stops at the marker). Stopped midway: no marker."""
    config, feed = engine.config, engine.feed
    logger.info("Backfilling %s up to now, then stopping", ", ".join(config.pairs))
    deadline = config.backfill_deadline
    ends_at = time.monotonic() + deadline if deadline is not None else None
    while running() and feed.backfill_pending:
        if ends_at is not None and time.monotonic() >= ends_at:
            break
        engine.idle(0.2, running)
    if not running():
        return
    engine.checkpoint()
    outcome = _outcome(engine)
    engine.publisher.end_of_backfill(outcome)
    while running():
        time.sleep(0.2)


def _outcome(engine: Engine) -> str:
    """How the backfill ended, logged."""
    feed = engine.feed
    failed = sorted(feed.backfill_failed)
    if feed.backfill_pending:
        logger.error(
            "backfill_deadline (%g s) passed before the backfill was complete; where each "
            "pair stopped: %s",
            engine.config.backfill_deadline,
            where_stopped(engine),
        )
        return "deadline"
    if failed:
        logger.error(
            "The backfill of %s is incomplete: Kraken's REST cannot serve it (see above)",
            ", ".join(failed),
        )
        return "rest_unusable"
    logger.info("Backfill complete: %s", engine.summary())
    return "complete"


def where_stopped(engine: Engine) -> str:
    """`BTC/USD at trade_id 123 (2024-01-02T03:04:05Z), ETH/USD not started`."""
    parts = []
    for pair in engine.config.pairs:
        position = engine.feed.lane(pair).position
        if position is None:
            parts.append(f"{pair} not started")
        else:
            moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(position[1] / 1000))
            parts.append(f"{pair} at trade_id {position[0]} ({moment})")
    return ", ".join(parts)
