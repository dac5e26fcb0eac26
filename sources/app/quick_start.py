"""How the pipelines' Quix Streams applications start without waiting for nothing.

Quix Streams 3.28 (measured with `python -m bench --startup`, see docs/benchmark.md):

- ends a state recovery only after a consumer poll of a whole second came back empty, and
  then judges the position it cached up to a second before: a recovery of a few records
  takes one to two seconds. `PromptRecovery` polls briefly and reads the position afresh;
  it ends at the same point (the changelog read to its end, as the broker reports it);
- stops the application when a store's local state is ahead of its changelog (a deleted
  changelog; Tansu reports the end of a changelog short by its last batch), and
  `run_application` then starts a new application, whose consumer joins the group again.
  `SelfHealingStores` drops that store's local copy and recovers it from the changelog
  within the same assignment instead;
- starts a source's process only once the group join has assigned partitions, so that the
  process's start (spawn, imports: about 0.7 s) and its state recovery follow the join, which
  the broker holds for a second or more (Tansu: half the session timeout, which
  `group_timing` sets to 2,000 ms there; Kafka and Redpanda: their initial rebalance delay,
  3 s by default). `PromptSourceProcess.spawn_early` spawns it with
  the join instead; its source waits at a closed `start_gate` and starts, as in Quix Streams,
  at the assignment.

Beside them, `ChangelogSafeConsumer` (`changelog_guard`) keeps a stray changelog record out of
the main loop, where Quix Streams would stop the application with a `KeyError`.

Each of the four is a reach into Quix Streams' internals (no public way offers it), taken
only because the bench measures it in seconds (docs/benchmark.md, "Start-up") or a crash was
seen, and each is guarded: `unexpected(reach)` compares the internals it relies on
(`REACHES`: methods and their parameters) with the installed Quix Streams, and a reach that
does not fit is left out (logged): the application then runs as Quix Streams runs it. They
were checked with the Quix Streams versions in `quix_internals.CHECKED_WITH` (the one range for
every reach into Quix Streams), and `tests/unit/test_quick_start.py` fails when one no longer
fits.

`QuickStart` is mixed into the pipelines' `Application` (`topic_manager.PipelineApplication`).
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from confluent_kafka import TopicPartition
from quixstreams import Application
from quixstreams.internal_consumer import InternalConsumer
from quixstreams.sources.base import manager as source_manager
from quixstreams.sources.base.manager import SourceProcess
from quixstreams.state import RecoveryManager, StateStoreManager, StorePartition
from quixstreams.state.exceptions import InvalidStoreChangelogOffset

from ..kraken.quix_internals import CHECKED_WITH, mismatches
from .changelog_guard import ChangelogSafeConsumer

__all__ = [
    "REACHES",
    "PromptRecovery",
    "QuickStart",
    "SelfHealingStores",
    "unexpected",
]

logger = logging.getLogger(__name__)


RECOVERY_POLL = 0.05  # seconds a recovery's poll waits for a changelog record
MAIN_LOOP_POLL = 0.1  # seconds the main loop's poll waits for a record (a public argument)

# Each reach: the Quix Streams methods it overrides or calls, with their parameter names.
REACHES: dict[str, tuple[tuple[type, str, tuple[str, ...]], ...]] = {
    "prompt recovery": (
        (
            RecoveryManager,
            "__init__",
            ("self", "consumer", "topic_manager", "broker_availability_timeout"),
        ),
        (RecoveryManager, "_get_position_with_cache", ("self", "rp")),
        (RecoveryManager, "_prime_changelog_partition", ("self", "rp")),
        (SourceProcess, "_recover_state", ("self", "source")),
    ),
    "rebuild in place": (
        (
            StateStoreManager,
            "on_partition_assign",
            ("self", "stream_id", "partition", "committed_offsets"),
        ),
        (StateStoreManager, "on_partition_revoke", ("self", "stream_id", "partition")),
        (StateStoreManager, "destroy_partition_state", ("self", "stream_id", "partition")),
    ),
    "source spawned with the join": (
        (Application, "_run_dataframe", ("self", "sink")),
        (SourceProcess, "start", ("self",)),
        (SourceProcess, "raise_for_error", ("self",)),
    ),
    "changelog records kept out": (
        (InternalConsumer, "poll_row", ("self", "timeout", "buffered")),
        (InternalConsumer, "pause", ("self", "partitions")),
    ),
}


def unexpected(reach: str) -> list[str]:
    """What of `REACHES[reach]` the installed Quix Streams does not have as expected
    (empty: the reach fits)."""
    return mismatches(REACHES[reach])


def _fits(reach: str) -> bool:
    """True when the reach fits this Quix Streams; else says so."""
    missing = unexpected(reach)
    if missing:
        logger.warning(
            "Quix Streams is not as %r expects (checked with %s): %s; starting without it",
            reach,
            CHECKED_WITH,
            "; ".join(missing),
        )
    return not missing


class PromptRecovery(RecoveryManager):
    """A `RecoveryManager` that ends once the changelogs are read, not a second or two later.

    Its loop still ends only when a poll comes back empty and the consumer's position has
    reached each changelog's end (as the broker reports it); the poll waits
    `RECOVERY_POLL` seconds instead of one, and the position is read when judged (a local
    call) instead of from a cache up to a second old.
    """

    def __init__(self, *, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer=_ShortPolls(consumer), **kwargs)

    def _get_position_with_cache(self, rp: Any) -> TopicPartition:
        return self._consumer.position([TopicPartition(rp.changelog_name, rp.partition_num)])[0]

    def _prime_changelog_partition(self, rp: Any) -> None:
        # Resumed, then sought (Quix Streams seeks, then resumes): librdkafka drops the answer
        # to the offset query a seek to a logical offset starts (the changelog's start, for a
        # store without an offset) when a resume follows, and asks again 500 ms later.
        partition = TopicPartition(rp.changelog_name, rp.partition_num, rp.offset)
        self._consumer.resume([partition])
        self._consumer.seek(partition)


class _ShortPolls:
    """A consumer whose `poll` waits at most `RECOVERY_POLL` seconds; the rest is the
    consumer's."""

    def __init__(self, consumer: Any) -> None:
        self._inner = consumer

    def poll(self, timeout: float | None = None) -> Any:
        return self._inner.poll(RECOVERY_POLL if timeout is None else min(timeout, RECOVERY_POLL))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SelfHealingStores(StateStoreManager):
    """A `StateStoreManager` that rebuilds a store partition from its changelog when its
    local state is ahead of it, within the assignment (no new application, no new join)."""

    def on_partition_assign(
        self, stream_id: str | None, partition: int, committed_offsets: dict[str, int]
    ) -> dict[str, StorePartition]:
        try:
            return super().on_partition_assign(stream_id, partition, committed_offsets)
        except InvalidStoreChangelogOffset:
            logger.warning(
                "Local state is ahead of its changelog topic: rebuilding it from there (%s[%d])",
                stream_id,
                partition,
            )
        self.on_partition_revoke(stream_id, partition)  # type: ignore[arg-type]
        self.destroy_partition_state(stream_id, partition)  # type: ignore[arg-type]
        return super().on_partition_assign(stream_id, partition, committed_offsets)


class PromptSourceProcess(SourceProcess):
    """The source's process, recovering the source's state with `PromptRecovery`; spawned
    early (`spawn_early`) when its source has a `start_gate`, which `start()` then opens."""

    _early = False

    def spawn_early(self) -> None:
        """Spawn the process now, during the group join: it imports and recovers the source's
        state while the broker holds the join. Its source waits at its closed `start_gate`,
        and `started` stays False (its errors are raised from `start()` on), until Quix
        Streams calls `start()` at the assignment."""
        gate = multiprocessing.get_context("spawn").Event()
        self.source.start_gate = gate
        self._early = True
        logger.debug("Spawning the process of source %s during the group join", self.source)
        super(SourceProcess, self).start()  # the process itself; `SourceProcess.start` later

    def start(self) -> None:
        if not self._early:
            super().start()
            return
        source_manager.logger.info("Starting source %s", self.source)  # Quix Streams' line
        self._started = True
        self.source.start_gate.set()

    def _recover_state(self, source: Any) -> StorePartition:
        # Quix Streams builds the RecoveryManager here by its module-level name; this
        # process is single-threaded until the source runs, and the name is put back.
        original = source_manager.RecoveryManager
        source_manager.RecoveryManager = PromptRecovery
        try:
            return super()._recover_state(source)
        finally:
            source_manager.RecoveryManager = original


class QuickStart(Application):
    """An `Application` that recovers state promptly, rebuilds a store that is ahead of its
    changelog in place, and keeps changelog records out of its main loop (each where it fits
    this Quix Streams: see the module). A source with a `start_gate` has its process
    spawned with the group join; it starts, as in Quix Streams, once the join has assigned
    partitions."""

    def __init__(self, **kwargs: Any) -> None:
        # the assignment callback runs inside the main loop's poll, which then waits out its
        # timeout (Quix Streams: 1 s) before a state recovery can start
        kwargs.setdefault("consumer_poll_timeout", MAIN_LOOP_POLL)
        super().__init__(**kwargs)
        self._prompt_recovery = _fits("prompt recovery")
        state = getattr(self, "_state_manager", None)
        if type(state) is StateStoreManager and _fits("rebuild in place"):
            state.__class__ = SelfHealingStores
        consumer = getattr(self, "_consumer", None)
        if type(consumer) is InternalConsumer and _fits("changelog records kept out"):
            consumer.__class__ = ChangelogSafeConsumer
        recovery = getattr(state, "_recovery_manager", None)
        if self._prompt_recovery and type(recovery) is RecoveryManager:
            state._recovery_manager = PromptRecovery(  # as Quix Streams makes its own
                consumer=self._consumer,
                topic_manager=self._topic_manager,
                broker_availability_timeout=self._broker_availability_timeout,
            )

    def add_source(self, source: Any, topic: Any = None) -> Any:
        topic = super().add_source(source, topic)
        if self._prompt_recovery:
            for process in self._source_manager.processes:
                if type(process) is SourceProcess:
                    process.__class__ = PromptSourceProcess
        return topic

    def _run_dataframe(self, sink: Any = None) -> None:
        if _fits("source spawned with the join"):
            for process in self._source_manager.processes:
                gated = hasattr(process.source, "start_gate")
                if type(process) is PromptSourceProcess and gated and not process.started:
                    process.spawn_early()
        super()._run_dataframe(sink)
