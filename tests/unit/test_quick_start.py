"""The applications' quick start: a store ahead of its changelog is rebuilt in place, a
recovery waits for nothing, the source starts as in Quix Streams (`sources.app.quick_start`).

Start-up times themselves are measured by `python -m bench --startup`, not here."""

from __future__ import annotations

import threading
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from quixstreams.internal_consumer import InternalConsumer
from quixstreams.models.topics import Topic, TopicType
from quixstreams.state import StateStoreManager
from quixstreams.state.exceptions import InvalidStoreChangelogOffset

from sources.app import quick_start
from sources.app.changelog_guard import ChangelogSafeConsumer
from sources.app.quick_start import (
    REACHES,
    RECOVERY_POLL,
    PromptRecovery,
    PromptSourceProcess,
    SelfHealingStores,
    unexpected,
)
from sources.app.topic_manager import PipelineApplication


class _Subscribed(Exception):
    """Ends `_run_dataframe` once the consumer subscribed (no broker is needed)."""


class _Source:
    """A source as the application holds it; `gated`: it has a `start_gate` (as
    `KrakenTradesSource` has)."""

    def __init__(self, gated: bool) -> None:
        if gated:
            self.start_gate: Any = None


def _process(source: _Source) -> PromptSourceProcess:
    process = PromptSourceProcess.__new__(PromptSourceProcess)  # no pipe, no process yet
    process.source = source  # type: ignore[assignment]
    process._started = False
    return process


def _calls_until_subscribed(
    monkeypatch: pytest.MonkeyPatch,
    source: _Source,
    offset_reset: str = "earliest",
    guarantee: str = "at-least-once",
) -> tuple[list[str], PromptSourceProcess]:
    """What happens from `_run_dataframe` until the consumer subscribes (no broker)."""
    app = PipelineApplication(
        broker_address="127.0.0.1:1",
        consumer_group="g",
        auto_offset_reset=offset_reset,
        processing_guarantee=guarantee,
    )
    calls: list[str] = []
    process = _process(source)
    app._source_manager.processes.append(process)
    monkeypatch.setattr(BaseProcess, "start", lambda self: calls.append("spawn"))
    # a spawn context's Event starts multiprocessing's resource tracker: a process
    spawn = SimpleNamespace(Event=threading.Event)
    monkeypatch.setattr(
        quick_start, "multiprocessing", SimpleNamespace(get_context=lambda m: spawn)
    )
    monkeypatch.setattr(app._source_manager, "start_sources", lambda: calls.append("start"))

    def subscribe(*args: Any, **kwargs: Any) -> None:
        calls.append("subscribe")
        raise _Subscribed

    monkeypatch.setattr(app._consumer, "subscribe", subscribe)
    with pytest.raises(_Subscribed):
        app._run_dataframe()
    return calls, process


def test_a_gated_source_s_process_spawns_with_the_join_and_its_source_starts_at_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process imports and recovers the source's state while the broker holds the join;
    the source itself starts where Quix Streams starts it, whatever the offset reset or the
    guarantee (a source that writes before the join can be missed by a `latest` consumer)."""
    for reset in ("earliest", "latest"):
        for guarantee in ("at-least-once", "exactly-once"):
            calls, process = _calls_until_subscribed(monkeypatch, _Source(True), reset, guarantee)
            assert calls == ["spawn", "subscribe"]
            gate = process.source.start_gate
            assert not gate.is_set() and not process.started  # its errors wait for start()
            process.start()  # Quix Streams' start_sources(), at the assignment
            assert gate.is_set() and process.started
            assert calls == ["spawn", "subscribe"]  # not spawned twice


def test_a_source_without_a_gate_starts_as_in_quix_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls, process = _calls_until_subscribed(monkeypatch, _Source(False))
    assert calls == ["subscribe"] and not hasattr(process.source, "start_gate")


@pytest.mark.parametrize("reach", sorted(REACHES))
def test_each_reach_into_quix_streams_fits_the_installed_version(reach: str) -> None:
    """Fails when Quix Streams changes an internal a reach relies on (see CHECKED_WITH)."""
    assert unexpected(reach) == []


def test_a_reach_that_does_not_fit_is_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another Quix Streams: the application starts as Quix Streams starts it."""
    from quixstreams.state import RecoveryManager

    changed = {name: ((StateStoreManager, "no_such_method", ("self",)),) for name in REACHES}
    monkeypatch.setattr(quick_start, "REACHES", changed)
    app = PipelineApplication(broker_address="127.0.0.1:1", consumer_group="g")
    assert type(app._state_manager) is StateStoreManager
    assert type(app._state_manager._recovery_manager) is RecoveryManager
    assert "starting without it" in caplog.text
    calls: list[str] = []
    app._source_manager.processes.append(_process(_Source(True)))
    monkeypatch.setattr(BaseProcess, "start", lambda self: calls.append("spawn"))
    monkeypatch.setattr(app._source_manager, "start_sources", lambda: calls.append("start"))

    def subscribe(*args: Any, **kwargs: Any) -> None:
        raise _Subscribed

    monkeypatch.setattr(app._consumer, "subscribe", subscribe)
    with pytest.raises(_Subscribed):
        app._run_dataframe()
    assert calls == []  # the source's process waits for the assignment, as in Quix Streams


def test_the_application_and_its_sources_recover_state_promptly() -> None:
    app = PipelineApplication(broker_address="127.0.0.1:1", consumer_group="g")
    assert type(app._state_manager) is SelfHealingStores
    assert type(app._state_manager._recovery_manager) is PromptRecovery


class _Recovery:
    """What `StateStoreManager` asks of a RecoveryManager; the first assignment finds the
    local state ahead of its changelog (as on Tansu, whose changelog ends look short)."""

    def __init__(self) -> None:
        self.ahead = True
        self.assigned: list[int] = []
        self.revoked: list[int] = []

    def register_changelog(self, topic_name: str, store_name: str, **kwargs: Any) -> Any:
        return SimpleNamespace(name=f"changelog__{topic_name}--{store_name}")

    def assign_partition(self, topic: str, partition: int, **kwargs: Any) -> None:
        self.assigned.append(partition)
        if self.ahead:
            self.ahead = False
            raise InvalidStoreChangelogOffset("ahead of its changelog")

    def revoke_partition(self, partition_num: int) -> None:
        self.revoked.append(partition_num)


def _write_last(state_dir: Path, value: int) -> None:
    """A store partition with a value in it, as a previous run left it."""
    stores = StateStoreManager(group_id="g", state_dir=str(state_dir))
    stores.register_store("trades", "default")
    partition = stores.on_partition_assign("trades", 0, {})["default"]
    transaction = partition.begin()
    transaction.as_state(prefix=b"BTC/USD").set("last", value)
    transaction.prepare()
    transaction.flush()
    stores.close()


def test_a_store_ahead_of_its_changelog_is_rebuilt_within_the_assignment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No exception stops the application (a new one would join the group again): the local
    copy is dropped and the store recovers from its changelog."""
    _write_last(tmp_path, 41)
    recovery = _Recovery()
    stores = SelfHealingStores(group_id="g", state_dir=str(tmp_path), recovery_manager=recovery)
    stores.register_store("trades", "default")
    partition = stores.on_partition_assign("trades", 0, {})["default"]
    assert partition.begin().as_state(prefix=b"BTC/USD").get("last") is None  # dropped
    assert recovery.assigned == [0, 0] and recovery.revoked == [0]
    assert "Local state is ahead of its changelog topic: rebuilding it from there" in caplog.text
    stores.close()


def test_a_store_in_step_with_its_changelog_is_kept(tmp_path: Path) -> None:
    _write_last(tmp_path, 41)
    recovery = _Recovery()
    recovery.ahead = False
    stores = SelfHealingStores(group_id="g", state_dir=str(tmp_path), recovery_manager=recovery)
    stores.register_store("trades", "default")
    partition = stores.on_partition_assign("trades", 0, {})["default"]
    assert partition.begin().as_state(prefix=b"BTC/USD").get("last") == 41
    assert recovery.assigned == [0] and recovery.revoked == []
    stores.close()


class _Consumer:
    """Records what the recovery asks of the consumer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.offset = 0

    def poll(self, timeout: float) -> None:
        self.calls.append(("poll", timeout))

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self.offset += 1
        self.calls.append(("position", self.offset))
        return [TopicPartition(p.topic, p.partition, self.offset) for p in partitions]

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", partitions[0].offset))

    def seek(self, partition: TopicPartition) -> None:
        self.calls.append(("seek", partition.offset))


def _prompt(consumer: _Consumer) -> PromptRecovery:
    return PromptRecovery(consumer=consumer, topic_manager=None)


def test_a_recovery_polls_briefly() -> None:
    """Its loop ends on an empty poll: Quix Streams' polls wait a whole second."""
    consumer = _Consumer()
    _prompt(consumer)._consumer.poll(1)
    assert consumer.calls == [("poll", RECOVERY_POLL)]


def test_a_recovery_judges_the_position_of_now() -> None:
    """Quix Streams judges a position it cached up to a second before."""
    consumer = _Consumer()
    recovery = _prompt(consumer)
    partition = SimpleNamespace(changelog_name="changelog", partition_num=0)
    offsets = [recovery._get_position_with_cache(partition).offset for _ in range(2)]
    assert offsets == [1, 2]


def test_a_changelog_partition_is_resumed_before_it_is_sought() -> None:
    """librdkafka drops the answer to a seek's offset query when a resume follows it, and
    asks again 500 ms later."""
    consumer = _Consumer()
    partition = SimpleNamespace(
        changelog_name="changelog", partition_num=0, offset=OFFSET_BEGINNING
    )
    _prompt(consumer)._prime_changelog_partition(partition)
    assert consumer.calls == [("resume", OFFSET_BEGINNING), ("seek", OFFSET_BEGINNING)]


def test_the_source_process_recovers_with_the_prompt_recovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Quix Streams builds the source's RecoveryManager by its module-level name."""
    from quixstreams.sources.base import manager
    from quixstreams.state import RecoveryManager

    monkeypatch.setattr(
        manager.SourceProcess, "_recover_state", lambda self, source: manager.RecoveryManager
    )
    process = PromptSourceProcess.__new__(PromptSourceProcess)  # what the spawned child holds
    used = process._recover_state(None)
    assert used is PromptRecovery
    assert manager.RecoveryManager is RecoveryManager  # put back


def test_a_changelog_record_never_reaches_the_main_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen once in CI: a changelog record polled by the main loop stopped the application
    with a KeyError (no dataframe reads a changelog topic). It is dropped, its partition
    paused again, and the log says so; the rows of data topics pass as they come."""
    app = PipelineApplication(broker_address="127.0.0.1:1", consumer_group="g")
    consumer = app._consumer
    assert type(consumer) is ChangelogSafeConsumer
    changelog = Topic("changelog__g--trades--default", topic_type=TopicType.CHANGELOG)
    consumer._topics = {t.name: t for t in (changelog, Topic("trades"))}
    stray = SimpleNamespace(topic=changelog.name, partition=2, offset=7)
    data = SimpleNamespace(topic="trades", partition=2, offset=8)
    polled = [[data, data], stray, data, None]
    monkeypatch.setattr(InternalConsumer, "poll_row", lambda self, **kw: polled.pop(0))
    paused: list[TopicPartition] = []
    monkeypatch.setattr(consumer, "pause", paused.extend)
    assert [consumer.poll_row(timeout=0.1) for _ in range(4)] == [[data, data], None, data, None]
    assert [(tp.topic, tp.partition) for tp in paused] == [(changelog.name, 2)]
    assert f"changelog record reached the processing loop ({changelog.name}[2] at offset 7)" in (
        caplog.text
    )
