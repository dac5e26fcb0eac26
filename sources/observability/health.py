"""What `/healthz` and `/readyz` answer.

- alive (`/healthz`): the dataframe's loop turned within `stale_after` seconds (a periodic
  task of the Quix Streams application notes each turn) and, in the trades pipeline, so did
  the Kraken source's loop (its heartbeat gauge). Before the first turn it is "starting",
  and alive: a probe must not kill an application that waits for its broker.
- ready (`/readyz`): alive, every pair the source streams is subscribed (not required for
  `backfill_only`, which has no WebSocket), no pair is blocked (a repair that has not
  advanced for 5 minutes, a pair Kraken's REST cannot serve, trade_ids that went back), and
  the broker answers a metadata request.

The answers are computed from plain values (`SourceState`, the broker check's result), so
tests drive them without a server or a process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BrokerProbe", "Health", "SourceState", "read_source_state"]

logger = logging.getLogger(__name__)

STALE_AFTER = 120.0  # seconds without a loop turn before /healthz says 503
HEARTBEAT = "kraken_trades_source_heartbeat_timestamp_seconds"
CONFIGURED = "kraken_trades_pairs_configured"
SUBSCRIBED = "kraken_trades_pairs_subscribed"
PAIR_SUBSCRIBED = "kraken_trades_pair_subscribed"
PAIR_UNREADY = "kraken_trades_pair_unready"


@dataclass
class SourceState:
    """What the Kraken source's process last reported through its metrics.

    :param heartbeat: Unix time of its loop's last turn, None before the first.
    :param configured: pairs it streams (None before it said).
    :param subscribed_count: of those, pairs subscribed now (None before it said).
    :param subscribed: pair -> whether its subscription is acknowledged now.
    :param unready: pair -> why it blocks readiness (`repair_stalled`, `rest_unusable`,
        `sequence_regression`).
    """

    heartbeat: float | None = None
    configured: int | None = None
    subscribed_count: int | None = None
    subscribed: dict[str, bool] = field(default_factory=dict)
    unready: dict[str, str] = field(default_factory=dict)


def read_source_state(families: Iterable[Any]) -> SourceState:
    """The `SourceState` from collected metric families (e.g. `registry.collect()`)."""
    state = SourceState()
    for family in families:
        if family.name == HEARTBEAT:
            for sample in family.samples:
                if sample.value > 0:  # 0: created, not set yet
                    state.heartbeat = max(state.heartbeat or 0.0, sample.value)
        elif family.name == CONFIGURED:
            for sample in family.samples:
                state.configured = int(sample.value)
        elif family.name == SUBSCRIBED:
            for sample in family.samples:
                state.subscribed_count = int(sample.value)
        elif family.name == PAIR_SUBSCRIBED:
            for sample in family.samples:
                state.subscribed[sample.labels["pair"]] = sample.value >= 1
        elif family.name == PAIR_UNREADY:
            for sample in family.samples:
                if sample.value >= 1:
                    state.unready[sample.labels["pair"]] = sample.labels["reason"]
    return state


class BrokerProbe:
    """Whether the broker answers a metadata request; asked at most every `interval` s.

    :param timeout: seconds one check may take.
    """

    def __init__(self, interval: float = 5.0, timeout: float = 2.0) -> None:
        self.interval = interval
        self.timeout = timeout
        self.config: dict[str, Any] | None = None  # librdkafka settings, once the app exists
        self._admin: Any = None
        self._last: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def use(self, config: dict[str, Any]) -> None:
        """Check the broker these librdkafka settings name."""
        with self._lock:
            if config != self.config:
                self.config, self._admin, self._last = dict(config), None, None

    def up(self) -> bool | None:
        """True if the broker answered, False if not, None while no broker is known."""
        with self._lock:
            if self.config is None:
                return None
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.interval:
                return self._last[1]
            answered = self._check()
            self._last = (time.monotonic(), answered)
            return answered

    def _check(self) -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            if self._admin is None:
                self._admin = AdminClient({**(self.config or {}), "log_level": 0})
            self._admin.list_topics(timeout=self.timeout)
            return True
        except KafkaException as exc:
            logger.debug("Broker check failed: %s", exc)
            return False


class Health:
    """The liveness and readiness of one pipeline process.

    :param source: a Kraken source process is expected (the trades pipeline).
    :param require_subscriptions: readiness needs every pair subscribed (not in
        `backfill_only`).
    :param stale_after: seconds without a loop turn before the process is not alive.
    :param broker: the broker check (None: readiness does not ask the broker).
    :param on_broker: told each broker check's result (e.g. to set a gauge).
    """

    def __init__(
        self,
        *,
        source: bool = True,
        require_subscriptions: bool = True,
        stale_after: float = STALE_AFTER,
        broker: BrokerProbe | None = None,
        on_broker: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.require_subscriptions = require_subscriptions
        self.stale_after = stale_after
        self.broker = broker
        self.on_broker = on_broker
        self._clock = clock
        self._wall = wall
        self.loop_turned: float | None = None  # monotonic time of the dataframe loop's last turn

    # --- the main loop ----------------------------------------------------------------

    def beat(self) -> None:
        """The dataframe's loop turned (a periodic task: a plain attribute write)."""
        self.loop_turned = self._clock()

    def watch(self, app: Any) -> None:
        """Follow `app` (a Quix Streams `Application`): its loop's turns and its broker."""
        registry = getattr(app, "_dataframe_registry", None)
        register = getattr(registry, "register_periodic_task", None)
        if register is not None:
            register(self.beat)
        else:  # another Quix Streams version: /healthz cannot see the loop turn
            logger.warning("/healthz cannot follow the application's loop (Quix Streams API)")
        if self.broker is not None:
            self.broker.use(app.config.broker_address.as_librdkafka_dict())

    # --- the answers ------------------------------------------------------------------

    def broker_up(self) -> bool | None:
        """Check the broker (cached by the probe), telling `on_broker`."""
        if self.broker is None:
            return None
        up = self.broker.up()
        if up is not None and self.on_broker is not None:
            self.on_broker(up)
        return up

    def liveness(self, state: SourceState | None = None) -> tuple[bool, str]:
        """(alive, a short text saying why)."""
        problems = []
        if self.loop_turned is None:
            loop = "dataframe loop: starting"
        else:
            age = self._clock() - self.loop_turned
            loop = f"dataframe loop: turned {age:.1f} s ago"
            if age > self.stale_after:
                problems.append(f"dataframe loop: no turn for {age:.0f} s")
        source = ""
        if self.source:
            heartbeat = state.heartbeat if state else None
            if heartbeat is None:
                source = "source: starting"
            else:
                age = self._wall() - heartbeat
                source = f"source loop: turned {age:.1f} s ago"
                if age > self.stale_after:
                    problems.append(f"source loop: no turn for {age:.0f} s")
        if problems:
            return False, "; ".join(problems)
        return True, "ok: " + "; ".join(part for part in (loop, source) if part)

    def readiness(self, state: SourceState | None, broker_up: bool | None) -> tuple[bool, str]:
        """(ready, a short text saying what is missing)."""
        alive, why = self.liveness(state)
        missing = [] if alive else [why]
        if self.loop_turned is None:
            missing.append("dataframe loop not started")
        if self.source:
            state = state or SourceState()
            if state.heartbeat is None:
                missing.append("source not started")
            elif self.require_subscriptions:
                configured, count = state.configured, state.subscribed_count
                if configured is None or count is None:
                    missing.append("source: pairs not reported yet")
                elif count < configured:
                    pending = sorted(pair for pair, on in state.subscribed.items() if not on)
                    missing.append(
                        f"{configured - count} of {configured} pairs not subscribed: "
                        f"{_some(pending)}"
                    )
            if state.heartbeat is not None and state.unready:
                blocked = [f"{pair} ({why})" for pair, why in sorted(state.unready.items())]
                missing.append(f"{len(blocked)} pairs blocked: {_some(blocked)}")
        if self.broker is not None and not broker_up:
            missing.append("broker: not reachable" if broker_up is False else "broker: unknown")
        if missing:
            return False, "not ready: " + "; ".join(missing)
        return True, "ready"


def _some(items: list[str], shown: int = 10) -> str:
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"
