"""Running a Quix Streams application the way both pipelines need it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, MutableMapping

from confluent_kafka import KafkaError, KafkaException
from quixstreams import Application
from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError
from quixstreams.exceptions import PartitionAssignmentError
from quixstreams.kafka import ConnectionConfig
from quixstreams.state.exceptions import InvalidStoreChangelogOffset
from rocksdict import DbClosedError

from ..broker import wait_for_broker
from ..kraken.quix_internals import has_assignment
from .broker_security import BrokerSecurity
from .group_timing import STANDARD

__all__ = ["broker_address", "broker_connection", "on_quix_cloud", "run_application"]

QUIX_TOKEN = "Quix__Sdk__Token"
MAX_RESTARTS = 3  # in-process restarts after the consumer lost its group
# Seconds a restarted application may wait for its partitions before it starts over again: a
# group join can hang after a broker outage (seen on Tansu), and a pipeline that waits forever
# looks alive to every probe.
ASSIGNMENT_TIMEOUT = 30.0
QUIX_BROKER = "Quix__Broker__Address"


def on_quix_cloud(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when Quix Cloud set its SDK token: the platform connects the app to its broker."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(QUIX_TOKEN))


def broker_address(configured: str, environ: MutableMapping[str, str] | None = None) -> str | None:
    """The `broker_address` to give the Application: the token wins over an address.

    With a Quix Cloud token, Quix Streams configures the broker from the platform, but only
    when no address is given *and* `Quix__Broker__Address` is not in the environment (it reads
    that variable itself and would then skip the Cloud configuration). So with a token the
    variable is removed from the environment (logged) and None is returned.
    """
    environ = os.environ if environ is None else environ
    if not on_quix_cloud(environ):
        return configured
    if environ.pop(QUIX_BROKER, None):
        logger.warning(
            "%s is ignored: %s is set, Quix Cloud connects the app", QUIX_BROKER, QUIX_TOKEN
        )
    return None


def broker_connection(
    configured: str,
    security: BrokerSecurity,
    environ: MutableMapping[str, str] | None = None,
) -> ConnectionConfig | None:
    """The Application's connection settings: the address with SASL/TLS (`broker_*`), or
    None on Quix Cloud, where the platform connects the app (see `broker_address`)."""
    address = broker_address(configured, environ)
    if address is None:
        if security != BrokerSecurity():
            logger.warning("The broker_* settings are ignored: Quix Cloud connects the app")
        return None
    return security.connection_config(address)


logger = logging.getLogger(__name__)


def run_application(
    make_app: Callable[[Mapping[str, int]], Application],
    build: Callable[[Application], object],
    broker_timeout: float,
    timing: Mapping[str, int] = STANDARD,
) -> None:
    """Wait for the broker, build the dataframe, run; rebuild local state once if needed.

    `make_app(timing)` makes each application with its consumer group's session timing:
    `timing` (`group_timing` fits it to the broker) until the consumer has lost its group in
    this process, then `STANDARD`: a broker that let a short session lapse is too busy for one.

    Quix Streams creates its topics when the app starts, hence the wait. When the local
    state is ahead of what the broker says its changelog holds (a deleted changelog, or a
    broker that misreports watermarks of compacted topics, as Tansu does), the changelog
    is the source of truth: the local copy is dropped and recovered from it. When the consumer
    lost its group (a broker outage longer than the session timeout), the application starts
    over in this process, up to `MAX_RESTARTS` times.

    :raises BrokerUnavailable: when no broker answers within `broker_timeout` seconds.
    """
    app = make_app(timing)
    wait_for_broker(app.config.broker_address.as_librdkafka_dict(), broker_timeout)
    build(app)
    restarts, cleared = 0, False
    while True:
        watchdog = AssignmentWatchdog(app, ASSIGNMENT_TIMEOUT) if restarts else None
        try:
            _run(app)
            if watchdog is not None and watchdog.fired:
                raise NoAssignment(f"no partition assigned within {ASSIGNMENT_TIMEOUT:g} s")
            return
        except InvalidStoreChangelogOffset:
            if cleared:
                raise
            cleared = True
            logger.warning("Local state is ahead of its changelog topic: rebuilding it from there")
            app.clear_state()
        except GROUP_LOST as exc:
            # after a broker outage longer than the session timeout the group forgot this
            # member: start over from the committed offsets (the dedupe step drops replays)
            if restarts >= MAX_RESTARTS:
                raise
            restarts += 1
            logger.warning(
                "The consumer lost its group (%s): restarting the application (%d of %d)",
                exc,
                restarts,
                MAX_RESTARTS,
            )
        finally:
            if watchdog is not None:
                watchdog.cancel()
        app = make_app(STANDARD if restarts else timing)
        build(app)


class NoAssignment(RuntimeError):
    """A restarted application got no partition in time (`AssignmentWatchdog`)."""


# How a lost group shows. DbClosedError: Quix Streams 3.28 closes the stores of partitions it
# lost (a session that lapsed) and then commits the checkpoint that still holds them.
GROUP_LOST = (CheckpointConsumerCommitError, PartitionAssignmentError, NoAssignment, DbClosedError)


class AssignmentWatchdog:
    """Stop `app` if its consumer has no partition `timeout` seconds from now; `fired` says so.

    :param app: the application (its consumer is asked for its assignment, thread-safely).
    :param timeout: seconds until the check.
    """

    def __init__(self, app: Application, timeout: float) -> None:
        self.app = app
        self.fired = False
        self._timer = threading.Timer(timeout, self._check)
        self._timer.daemon = True
        self._timer.start()

    def _check(self) -> None:
        if has_assignment(self.app) is False:  # None: a consumer being closed, nothing to watch
            self.fired = True
            logger.warning("No partition assigned since the restart: starting over again")
            self.app.stop()

    def cancel(self) -> None:
        self._timer.cancel()


def _run(app: Application) -> None:
    try:
        app.run()
    except PartitionAssignmentError as exc:
        if not (interrupted_by_shutdown(exc) and _stopped_on_request(app)):
            raise
        logger.info("A partition assignment was cut short by the shutdown: nothing to do")


def _stopped_on_request(app: Application) -> bool:
    """The application was asked to stop (a signal), rather than stopped by a failure."""
    stop_event = getattr(app, "_stop_event", None)
    return bool(stop_event and stop_event.is_set()) and not getattr(app, "_failed", True)


def interrupted_by_shutdown(exc: BaseException) -> bool:
    """True for an error raised because the Kafka client was being closed.

    A consumer group rebalance that completes while the application closes (after a broker
    outage, say) runs its assignment callback on a client being destroyed; Quix Streams then
    raises `PartitionAssignmentError` from `_DESTROY`. Nothing was assigned or processed, so
    the stop is still clean.
    """
    cause = exc.__cause__
    if not isinstance(cause, KafkaException) or not cause.args:
        return False
    error = cause.args[0]
    return isinstance(error, KafkaError) and error.code() == KafkaError._DESTROY
