"""Running an Application: the Quix token wins over Quix__Broker__Address; clean stops."""

from __future__ import annotations

import logging

import pytest
from quixstreams import Application

from sources.app.run import broker_address


def test_without_a_token_the_configured_address_is_used() -> None:
    environ = {"Quix__Broker__Address": "redpanda:9092"}
    assert broker_address("redpanda:9092", environ) == "redpanda:9092"
    assert environ == {"Quix__Broker__Address": "redpanda:9092"}


def test_with_a_token_the_address_is_dropped_and_said_so(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"Quix__Sdk__Token": "sdk-123", "Quix__Broker__Address": "localhost:19092"}
    with caplog.at_level(logging.WARNING):
        assert broker_address("localhost:19092", environ) is None
    assert "Quix__Broker__Address" not in environ  # Quix Streams would read it otherwise
    assert "is ignored" in caplog.text


def test_quix_streams_then_takes_its_cloud_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the decision rests on: Quix Streams reads the variable itself, and an address
    (given or from the environment) turns the Cloud configuration off."""
    monkeypatch.setenv("Quix__Sdk__Token", "sdk-123")
    monkeypatch.setenv("Quix__Broker__Address", "localhost:19092")
    app = Application(broker_address=None, consumer_group="g")
    assert app.config.broker_address.bootstrap_servers == "localhost:19092"  # token ignored
    monkeypatch.delenv("Quix__Broker__Address")
    assert broker_address("localhost:19092") is None


def test_an_assignment_cut_short_by_the_shutdown_is_recognised() -> None:
    """After a broker outage a rebalance may complete while the app closes; Quix Streams then
    raises PartitionAssignmentError from the destroyed client: that stop is still clean."""
    from confluent_kafka import KafkaError, KafkaException
    from quixstreams.exceptions import PartitionAssignmentError

    from sources.app.run import interrupted_by_shutdown

    def raised(code: int) -> PartitionAssignmentError:
        try:
            try:
                raise KafkaException(KafkaError(code, "Failed to get committed offsets"))
            except KafkaException as cause:
                raise PartitionAssignmentError("Error during partition assignment") from cause
        except PartitionAssignmentError as exc:
            return exc

    assert interrupted_by_shutdown(raised(KafkaError._DESTROY))
    assert not interrupted_by_shutdown(raised(KafkaError._TRANSPORT))
    assert not interrupted_by_shutdown(PartitionAssignmentError("no cause"))


class _FakeConsumer:
    def __init__(self, assignment: list[object]) -> None:
        self._assignment = assignment

    def assignment(self) -> list[object]:
        return self._assignment


class _FakeApp:
    def __init__(self, assignment: list[object]) -> None:
        self._consumer = _FakeConsumer(assignment)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_a_restarted_app_without_partitions_is_stopped_to_start_over() -> None:
    """A group join that hangs after a broker outage must not leave the pipeline waiting."""
    import time

    from sources.app.run import AssignmentWatchdog

    stuck, running = _FakeApp([]), _FakeApp(["trades[0]"])
    watchdogs = [AssignmentWatchdog(stuck, 0.05), AssignmentWatchdog(running, 0.05)]
    time.sleep(0.3)
    assert stuck.stopped and watchdogs[0].fired
    assert not running.stopped and not watchdogs[1].fired
    cancelled = _FakeApp([])
    watchdog = AssignmentWatchdog(cancelled, 0.1)
    watchdog.cancel()
    time.sleep(0.3)
    assert not cancelled.stopped and not watchdog.fired


def _commit_failed() -> Exception:
    from confluent_kafka import KafkaError
    from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError

    return CheckpointConsumerCommitError(KafkaError(25, "Broker: Unknown member"))


def _store_closed() -> Exception:
    from rocksdict import DbClosedError

    return DbClosedError("DB instance already closed")


@pytest.mark.parametrize("failure", [_commit_failed, _store_closed], ids=["commit", "store"])
def test_an_application_that_lost_its_group_is_made_again_with_the_standard_timing(
    failure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the group was lost, `make_app` gets the standard session timing instead of the
    short one a busy broker let lapse. A lost group shows as a
    failed commit, or (Quix Streams 3.28 closes a lost partition's store, then commits the
    checkpoint that holds it, as seen in a soak) as a closed store."""
    from types import SimpleNamespace

    from sources.app import group_timing, run

    monkeypatch.setattr(run, "wait_for_broker", lambda *args, **kwargs: None)
    made: list[object] = []

    class App(_FakeApp):
        config = SimpleNamespace(broker_address=SimpleNamespace(as_librdkafka_dict=dict))

        def run(self) -> None:
            if len(made) == 1:
                raise failure()

    def make(timing: dict) -> App:
        made.append(timing)
        return App(["trades[0]"])

    run.run_application(make, lambda app: None, broker_timeout=1.0, timing=group_timing.SHORT)
    assert made == [group_timing.SHORT, group_timing.STANDARD]
