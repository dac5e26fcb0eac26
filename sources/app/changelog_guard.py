"""Changelog records kept out of the application's main loop.

A changelog partition is read only by a state recovery; between recoveries Quix Streams keeps
it paused. Should a changelog record still reach the main loop's poll (once in CI, on Tansu,
after a repair under load; the cause was not reproduced), Quix Streams 3.28 looks up a
dataframe for its topic, finds none, and stops the application with a `KeyError`.
`ChangelogSafeConsumer` drops that record instead, pauses its partition again and says so:
the record is state that the next recovery reads from the changelog, as the recovery loop
itself drops a record of a changelog partition it no longer recovers.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import TopicPartition
from quixstreams.internal_consumer import InternalConsumer

__all__ = ["ChangelogSafeConsumer"]

logger = logging.getLogger(__name__)


class ChangelogSafeConsumer(InternalConsumer):
    """The application's consumer, whose `poll_row` never hands a changelog record to the
    main loop (the class of an `InternalConsumer` is swapped for it: see `quick_start`)."""

    def poll_row(self, timeout: float | None = None, buffered: bool = False) -> Any:
        rows = super().poll_row(timeout=timeout, buffered=buffered)
        first = rows[0] if isinstance(rows, list) and rows else rows
        if first is None or isinstance(first, list):
            return rows
        topic = self._topics.get(first.topic)
        if topic is None or not topic.is_changelog:
            return rows
        self.pause([TopicPartition(first.topic, first.partition)])
        logger.warning(
            "A changelog record reached the processing loop (%s[%d] at offset %d), though "
            "changelogs are read only by a state recovery: dropped, and the partition paused "
            "again",
            first.topic,
            first.partition,
            first.offset,
        )
        return None
