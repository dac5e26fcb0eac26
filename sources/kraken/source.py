"""`KrakenTradesSource`: every Kraken trade of chosen pairs, as a Quix Streams source.

Lifecycle only, in Quix Streams' shape (`quixstreams/sources/base/source.py`): `setup()`
builds the `engine.Engine` once the source's state is recovered, `run()` waits for its
`start_gate` (when the application spawned it early) and loops until stopped,
`cleanup(failed)` tears down. What the loop does lives elsewhere: sequencing and
repairs in the core (`feed`, `lanes`), carrying out its decisions in `engine`, writing them
in `publish`, the finite backfill in `backfill`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from quixstreams.models.topics import Topic
from quixstreams.sources import StatefulSource

from .backfill import BACKFILL_OUTCOMES, run_backfill
from .config import SourceConfig
from .engine import Engine, MetricsSink
from .positions import Position, restore_positions, save_positions, starting_positions
from .publish import END_OF_BACKFILL_HEADER, Headers, Publisher
from .quix_internals import log_like_quixstreams, release_recovery_consumer, tune_producer
from .session import ConnectionLost, SubscriptionRejected

__all__ = [
    "BACKFILL_OUTCOMES",
    "END_OF_BACKFILL_HEADER",
    "SOURCE_PRODUCER_CONFIG",
    "ConnectionLost",
    "KrakenTradesSource",
    "SubscriptionRejected",
]

logger = logging.getLogger(__name__)

# The source's producer: not idempotent, one request in flight. Quix Streams makes every
# producer idempotent; librdkafka (<= 2.15) then busy-polls its broker thread whenever five
# messages of a partition are in flight, i.e. whenever a round trip outlasts linger.ms (a slow
# or loaded broker): CPU that grows with the broker's latency. Without idempotence, one
# request in flight keeps the order across retries, and the duplicates a retry may write are
# dropped by the dataframe's dedupe step. (Quix never makes a source's producer
# transactional, so this holds in both processing modes.)
SOURCE_PRODUCER_CONFIG = {"enable.idempotence": False, "max.in.flight.requests.per.connection": 1}

MetricsFactory = Callable[[tuple[str, ...], int | None], MetricsSink | None]
GATE_POLL = 0.05  # seconds between looks at a stop while the start gate is closed


class StartGate(Protocol):
    """What `run()` waits on: a `multiprocessing` Event of the spawn context."""

    def wait(self, timeout: float | None = None) -> bool: ...


class KrakenTradesSource(StatefulSource):
    """Every trade of the configured pairs from Kraken's WebSocket API v2, once, in trade_id
    order, keyed by pair (see `publish` for the messages); trades Kraken skipped are fetched
    from its REST API first, while that pair's live trades wait (other pairs flow on). Each
    pair's position is kept in the source's state, so a restarted pipeline repairs what
    happened while it was down.

    It reconnects on close, error or silence, with a backoff that keeps growing until a
    connection has stayed healthy for `healthy_after` seconds. It raises only on a fatal
    error: a pair Kraken never accepted.

    :param config: what it does (`config.SourceConfig`).
    :param start_positions: pair -> (last trade_id, its epoch ms) already written (in the
        output topic, or in the source topic for the dataframe to publish), for
        pairs without a saved position (a new state, group or shard count): they repair from
        there instead of taking their first live trade on faith.
    :param metrics: makes the metrics in the source's process, given the pairs and
        `backfill_since_ns` (e.g. `sources.observability.source_metrics`); None: no metrics.

    `start_gate` (None unless set before the process spawns): an application that spawns the
    source's process during its group join (`sources.app.quick_start`) sets it, and opens it
    once it has its partitions; until then `run()` neither connects nor writes.
    """

    start_gate: StartGate | None = None

    def __init__(
        self,
        config: SourceConfig,
        *,
        start_positions: Mapping[str, Position] | None = None,
        metrics: MetricsFactory | None = None,
        **legacy: Any,
    ) -> None:
        if not isinstance(config, SourceConfig):  # KrakenTradesSource(pairs, ws_url=..., ...)
            config = _legacy_config(config, legacy)
        elif legacy:
            raise TypeError(f"unexpected arguments {sorted(legacy)}: they belong in the config")
        self.config = config
        self.start_positions = dict(start_positions or {})
        self.metrics = metrics
        self.engine: Engine | None = None
        self._stop_requested = False
        self._saved: dict[str, Position] = {}
        super().__init__(
            name=config.name,
            shutdown_timeout=config.shutdown_timeout,
            on_client_connect_success=_quiet,
        )

    @property
    def pairs(self) -> tuple[str, ...]:
        return self.config.pairs

    # --- lifecycle ------------------------------------------------------------------------

    def setup(self) -> None:
        """In the source's process, once its state is recovered: build the engine."""
        if self._stop_requested:  # a stop during the recovery, before `start` set running
            self._running = False
        log_like_quixstreams(__name__.split(".")[0])
        release_recovery_consumer()
        tune_producer(self.producer, SOURCE_PRODUCER_CONFIG)
        config = self.config
        saved = restore_positions(self.state, config.pairs)
        self._saved = dict(saved)
        publisher = Publisher(
            self._produce_message,
            self.producer.flush,
            self._save_positions,
            decimal_strings=config.decimal_strings,
        )
        metrics = self.metrics(config.pairs, config.backfill_since_ns) if self.metrics else None
        positions = starting_positions(saved, self.start_positions)
        self.engine = Engine(config, positions, publisher, metrics)

    def run(self) -> None:
        """Stream (or, with `backfill_only`, fetch the history); return once stopped."""
        assert self.engine is not None
        gate = self.start_gate
        if gate is not None:
            while self.running and not gate.wait(GATE_POLL):
                pass  # a stop meanwhile: the loops below see it, as at any other time
        if self.config.backfill_only:
            run_backfill(self.engine, lambda: self.running)
        else:
            self.engine.run_live(lambda: self.running)

    def cleanup(self, failed: bool) -> None:
        """Stop the engine's threads; deliver and checkpoint what was published."""
        engine = self.engine
        if engine is not None:
            engine.close()
            if not failed:
                engine.checkpoint()
        super().cleanup(failed)

    def stop(self) -> None:
        """Ask the loop to finish (called on SIGTERM/SIGINT in the source's process), also
        while the state is being recovered (`setup` then keeps it stopped)."""
        self._stop_requested = True
        super().stop()

    # --- what the publisher writes with ---------------------------------------------------

    def _produce_message(self, key: str, value: Any, headers: Headers | None) -> None:
        message = self.serialize(key=key, value=value)
        self.produce(key=message.key, value=message.value, headers=headers)

    def _save_positions(self, positions: Mapping[str, Position]) -> None:
        if save_positions(self.state, positions, self._saved):
            self.flush()  # commits the state

    # --- Quix Streams plumbing ------------------------------------------------------------

    def default_topic(self) -> Topic:
        """JSON lists of Kraken trades (and gap events, objects), keyed by pair (string)."""
        return Topic(
            name=self.name,
            key_serializer="string",
            key_deserializer="string",
            value_serializer="json",
            value_deserializer="json",
            create_config=self.config.topic_config,
        )


def _legacy_config(pairs: Any, options: dict[str, Any]) -> SourceConfig:
    """The config of the keyword form before 0.2 (`pairs` first, every setting a keyword)."""
    warnings.warn(
        "KrakenTradesSource(pairs, **settings) is deprecated: pass a SourceConfig",
        DeprecationWarning,
        stacklevel=3,
    )
    if options.pop("repair_attempts", None) is not None:
        logger.warning("repair_attempts is deprecated and ignored: a repair never gives up")
    pairs = (pairs,) if isinstance(pairs, str) else tuple(pairs)
    return SourceConfig(pairs=pairs, **options)


def _quiet() -> None:
    """Quix Streams logs "CONNECTED!" after `setup` by default; the engine says more."""
