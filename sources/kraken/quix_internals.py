"""Where the source reaches into Quix Streams beyond its public API, each guarded.

Each function here works around something Quix Streams offers no public way to do; each
logs and carries on when the internals it expects are not there (another version), and a
test pins each. They were checked against the Quix Streams versions in `CHECKED_WITH`.
"""

from __future__ import annotations

import inspect
import logging
import multiprocessing
from collections.abc import Iterable

__all__ = [
    "CHECKED_WITH",
    "has_assignment",
    "log_like_quixstreams",
    "mismatches",
    "release_recovery_consumer",
    "tune_producer",
]

logger = logging.getLogger(__name__)

# the Quix Streams versions every reach into its internals was checked with (these guards, the
# topic policy in app/topic_manager.py, the quick start in app/quick_start.py)
CHECKED_WITH = ">=3.28,<=3.28.1"


def log_like_quixstreams(package: str) -> None:
    """In the source's process, send `package`'s log lines where Quix Streams sends its own."""
    quix = logging.getLogger("quixstreams")
    ours = logging.getLogger(package)
    if quix.handlers and not ours.handlers and not logging.getLogger().handlers:
        for handler in quix.handlers:
            ours.addHandler(handler)
        ours.setLevel(quix.level)
        ours.propagate = False


def tune_producer(producer: object, settings: dict[str, object]) -> None:
    """Give this source's producer its own settings before it connects.

    Quix Streams builds every producer from the application's one producer config and
    creates the librdkafka client on first use; until then its settings can still change.
    """
    client = getattr(producer, "_producer", None)  # InternalProducer -> kafka.Producer
    config = getattr(client, "_producer_config", None)
    if not isinstance(config, dict) or getattr(client, "_inner_producer", True) is not None:
        logger.warning("Could not apply the source's producer settings %s", settings)
        return
    config.update(settings)


def release_recovery_consumer() -> None:
    """Unassign the consumer Quix Streams used to recover this source's state.

    Quix Streams assigns the state's changelog partition to a consumer in the source's
    process and never releases it; when nothing needed recovering it is not even paused, so
    librdkafka fetches that partition in the background for the life of the process (every
    `fetch.wait.max.ms`). The consumer is not used again after the recovery.
    """
    consumer = getattr(multiprocessing.current_process(), "_consumer", None)
    if consumer is None:
        return
    try:
        consumer.unassign()
    except Exception as exc:  # never worth stopping the source for
        logger.debug("Could not release the state-recovery consumer: %s", exc)


def has_assignment(app: object) -> bool | None:
    """Whether the application's consumer holds a partition (None: it cannot be asked).

    Quix Streams 3.28 has no public way to ask; its `Application._consumer` is a confluent
    `Consumer`, whose `assignment()` is thread-safe.
    """
    consumer = getattr(app, "_consumer", None)
    try:
        return bool(consumer.assignment())  # type: ignore[union-attr]
    except Exception:  # no such consumer, or one being closed
        return None


def mismatches(expected: Iterable[tuple[type, str, tuple[str, ...]]]) -> list[str]:
    """Which of the Quix Streams methods we rely on (owner, name, parameter names) the
    installed version does not have as expected; empty: all fit."""
    found = []
    for owner, name, parameters in expected:
        method = getattr(owner, name, None)
        try:
            actual = tuple(inspect.signature(method).parameters) if callable(method) else None
        except (TypeError, ValueError):
            actual = None
        if actual != parameters:
            found.append(f"{owner.__name__}.{name}{parameters} (found: {actual})")
    return found
