"""Kraken trades -> Kafka: every trade of the chosen pairs, keyed by pair, on event time.

    KrakenTradesSource -> drop duplicates (seeded from the output) -> normalize
        -> filter by pair -> key + event time -> [transforms] -> to_topic(output)

Run: `python pipelines/trades/main.py`, or `quix run` / `python main.py`
in its folder (settings: see README).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `quix run` and Quix Cloud start this file from its own folder, without the repository on
# PYTHONPATH: put the nearest folder that holds the shared `sources` package on sys.path.
_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(p) for p in (_HERE, *_HERE.parents) if (p / "sources").is_dir()][:1]
from sources.app.startup import quiet_third_party_warnings

quiet_third_party_warnings()

import logging
from collections.abc import Sequence

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import TopicConfig
from quixstreams.sources.base.exceptions import SourceException

from sources.app.run import broker_address, on_quix_cloud, run_application
from sources.app.settings import ConfigError, TradesSettings
from sources.app.topics import retention_config, warn_if_retention_short
from sources.app.transforms import Transform, apply_transforms, load_transforms
from sources.broker import (
    BrokerUnavailable,
    EmbeddedBroker,
    broker_reachable,
    is_loopback,
    split_address,
)
from sources.kraken.source import END_OF_BACKFILL_HEADER, KrakenTradesSource
from sources.steps.dedupe import DropPublished
from sources.steps.last_written import last_trade_ids
from sources.steps.normalize import normalize_trades

logger = logging.getLogger("trades")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_HISTORY_INCOMPLETE = 0, 1, 2, 3
OUTPUT_PARTITIONS = 3


def make_source(settings: TradesSettings) -> KrakenTradesSource:
    """The Kraken source as the settings describe it."""
    return KrakenTradesSource(
        settings.pairs,
        name=f"kraken-{settings.output}",  # source topic: source__kraken-<output>
        ws_url=settings.kraken_ws_url,
        snapshot=settings.snapshot,
        heartbeat_timeout=settings.heartbeat_timeout,
        stats_interval=settings.stats_interval,
        rest_url=settings.kraken_rest_url,
        backfill_since_ns=settings.backfill_since_ns,
        backfill_only=settings.backfill_only,
        max_gap=settings.max_gap,
        max_held=settings.max_held,
        repair_timeout=settings.repair_timeout,
        repair_attempts=settings.repair_attempts,
    )


def build_dataframe(
    app: Application,
    settings: TradesSettings,
    transforms: Sequence[Transform] = (),
    history: HistoryEnd | None = None,
) -> StreamingDataFrame:
    """The declarative part of the pipeline; `transforms` run just before `to_topic`.

    :param history: with `backfill_only`, notes the end of the history and stops the app.
    """
    pairs = frozenset(settings.pairs)
    output = app.topic(
        settings.output,
        key_serializer="string",
        value_serializer="json",
        config=TopicConfig(
            num_partitions=OUTPUT_PARTITIONS,
            replication_factor=1,
            extra_config=retention_config(settings.retention_ms),
        ),
    )
    dedupe = DropPublished(seed_from_output(app, settings, output.name))
    sdf = app.dataframe(source=make_source(settings))
    if history is not None:
        sdf = sdf.update(history.step(app), metadata=True)
    sdf = sdf.apply(dedupe, stateful=True)  # never the same trade_id twice per pair
    sdf = sdf.apply(normalize_trades, expand=True)  # one message's trades -> one row each
    sdf = sdf.filter(lambda record: record["pair"] in pairs)
    sdf = sdf.set_timestamp(lambda record, key, timestamp, headers: record["timestamp_ms"])
    sdf = apply_transforms(sdf, transforms)  # the extension point: see `transforms` in README
    sdf.to_topic(output, key=lambda record: record["pair"])
    return sdf


class HistoryEnd:
    """`backfill_only`: stop the application at the source's end-of-history marker."""

    def __init__(self) -> None:
        self.reached = False

    def step(self, app: Application):
        def stop_at_marker(value, key, timestamp, headers) -> None:
            if headers and any(name == END_OF_BACKFILL_HEADER for name, _ in headers):
                logger.info("Backfill complete: stopping")
                self.reached = True
                app.stop()

        return stop_at_marker


# Consumer settings (see bench/ for the measurements behind them).
CONSUMER_EXTRA_CONFIG: dict[str, str | int] = {
    # Group joins take the session timeout on some brokers (Tansu): keep it short.
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 2000,
    # Tansu answers a fetch only when its wait is over, even when data came in meanwhile;
    # Kafka and Redpanda answer at once, so this only bounds how often an idle consumer asks.
    "fetch.wait.max.ms": 25,
}
# Producer settings, added to Quix Streams' defaults (bench/ gives the same to its baselines).
PRODUCER_EXTRA_CONFIG: dict[str, str | int] = {
    # Cheap for the CPU; JSON trades shrink about fivefold in full batches, which the broker
    # then takes in, stores and hands out.
    "compression.type": "lz4",
    # librdkafka's default, stated: a batch waits at most 5 ms (twice on the way: source
    # topic, then output topic); longer gains a little throughput for as much latency.
    "linger.ms": 5,
}


def make_application(settings: TradesSettings) -> Application:
    """An Application on the configured broker, or on Quix Cloud's when it sets its token."""
    return Application(
        broker_address=broker_address(settings.broker_address),
        consumer_group=settings.consumer_group,
        auto_offset_reset="earliest",
        loglevel=settings.loglevel,
        processing_guarantee=settings.processing_guarantee,
        broker_availability_timeout=settings.broker_timeout,
        consumer_extra_config=dict(CONSUMER_EXTRA_CONFIG),
        producer_extra_config={**PRODUCER_EXTRA_CONFIG, **_transaction_config(settings)},
    )


def _transaction_config(settings: TradesSettings) -> dict[str, str | int]:
    """In exactly-once mode, a transactional.id that survives restarts.

    Quix Streams picks a random one per start, so a crashed instance's open transaction
    blocks read_committed consumers until the broker times it out. A stable id lets the
    restarted instance fence the old producer and abort that transaction at once. The
    source topic has one partition, so one instance (replicas: 1) does all the work.
    """
    if settings.processing_guarantee != "exactly-once":
        return {}
    return {
        "transactional.id": f"{settings.consumer_group}-{settings.output}",
        "transaction.timeout.ms": 30_000,
    }


def _start_embedded_broker_if_needed(settings: TradesSettings) -> EmbeddedBroker | None:
    """Start Tansu on the configured loopback port when nothing answers there."""
    address = settings.broker_address
    if settings.embedded_broker != "auto" or on_quix_cloud() or not is_loopback(address):
        return None
    if broker_reachable(address):
        return None
    logger.warning(
        "No broker answers at %s: starting an embedded Tansu broker (in memory, "
        "data is lost when the pipeline stops)",
        address,
    )
    return EmbeddedBroker(port=split_address(address)[1]).start()


def seed_from_output(app: Application, settings: TradesSettings, topic: str) -> dict[str, int]:
    """Check the output topic's retention; in at-least-once mode, the dedupe seed from it:
    each pair's last trade_id already there (see `steps.dedupe`)."""
    broker_config = app.config.broker_address.as_librdkafka_dict()
    warn_if_retention_short(broker_config, topic, settings.retention_ms)
    if settings.processing_guarantee == "exactly-once":
        return {}  # the dedupe state commits with the output: nothing to seed
    seed = last_trade_ids(broker_config, topic, settings.pairs)
    if seed:
        logger.info(
            "Already in %s: %s",
            topic,
            ", ".join(f"{pair} up to trade_id {trade_id}" for pair, trade_id in seed.items()),
        )
    return seed


def run(
    settings: TradesSettings, transforms: Sequence[Transform], history: HistoryEnd | None = None
) -> None:
    """Run the pipeline until it is stopped."""
    run_application(
        lambda: make_application(settings),
        lambda app: build_dataframe(app, settings, transforms, history),
        settings.broker_timeout,
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    try:
        settings = TradesSettings.from_env()
        transforms = load_transforms(settings.transforms)
    except ConfigError as exc:
        logger.error("Configuration error: %s", exc)
        return EXIT_CONFIG
    history = HistoryEnd() if settings.backfill_only else None
    broker = None
    try:
        broker = _start_embedded_broker_if_needed(settings)
        run(settings, transforms, history)
    except SourceException as exc:
        logger.error("The Kraken source failed: %s", exc.__cause__ or exc)
        return EXIT_FAILED
    except BrokerUnavailable as exc:
        logger.error("Broker unavailable: %s", exc)
        return EXIT_FAILED
    finally:
        if broker:
            broker.stop()
    if history is not None and not history.reached:
        logger.error("Stopped before the history was complete: the dataset is partial")
        return EXIT_HISTORY_INCOMPLETE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
