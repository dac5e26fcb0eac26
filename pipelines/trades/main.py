"""Kraken trades -> Kafka: every trade of the chosen pairs, keyed by pair, on event time.

    KrakenTradesSource -> drop duplicates (seeded from the output) -> gap events to
        gaps_output -> trade messages of the pairs -> normalize (a row per trade)
        -> key + event time -> [transforms] -> to_topic(output)

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
from collections.abc import Mapping, Sequence
from dataclasses import replace

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic, TopicConfig
from quixstreams.sources.base.exceptions import SourceException

from sources.app import shards
from sources.app.group_timing import STANDARD, group_timing
from sources.app.run import broker_connection, on_quix_cloud, run_application
from sources.app.settings import ConfigError, TradesSettings
from sources.app.source_config import source_config
from sources.app.topic_manager import PipelineApplication
from sources.app.topics import (
    SOURCE_TOPIC,
    PartitionMismatch,
    check_partitions,
    topic_config,
    warn_if_retention_short,
)
from sources.app.transforms import Transform, apply_transforms, load_transforms
from sources.broker import (
    BrokerUnavailable,
    EmbeddedBroker,
    broker_reachable,
    is_loopback,
    split_address,
)
from sources.kraken.instruments import InstrumentsUnavailable
from sources.kraken.instruments import resolve_pairs as resolve_pair_specs
from sources.kraken.positions import latest
from sources.kraken.source import BACKFILL_OUTCOMES, END_OF_BACKFILL_HEADER, KrakenTradesSource
from sources.observability import source_metrics
from sources.observability.app import Observability, start_trades
from sources.steps.dedupe import DropPublished
from sources.steps.gaps import GapWriter, trades_of
from sources.steps.last_written import LastTradeIds, last_trade_ids
from sources.steps.normalize import normalize_trades

logger = logging.getLogger("trades")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_HISTORY_INCOMPLETE, EXIT_BACKFILL_DEADLINE = 0, 1, 2, 3, 4
# Source-topic messages read back at start (`seed_from_source_topic`): what a run stopped
# before its dataframe caught up left there is at the topic's end.
SOURCE_TAIL = 200


def make_source(
    settings: TradesSettings,
    optional_pairs: frozenset[str] = frozenset(),
    start_positions: dict[str, tuple[int, int]] | None = None,
) -> KrakenTradesSource:
    """The Kraken source as the settings describe it.

    :param optional_pairs: pairs from `all` or a pattern (see `resolve_pairs`).
    :param start_positions: each pair's last trade already written (see `seed_from_output`;
        `build_dataframe` adds the source topic's tail once the dataframe names that topic).
    """
    return KrakenTradesSource(
        source_config(settings, optional_pairs),
        start_positions=start_positions,
        metrics=source_metrics,  # None in the source's process while metrics_port is 0
    )


def resolve_pairs(settings: TradesSettings) -> tuple[TradesSettings, frozenset[str]]:
    """`pairs` with `all` and patterns resolved from Kraken's list (explicit symbols only: no
    network call), and the pairs that came from a pattern (a refusal of one is not fatal).

    :raises ConfigError: an explicit symbol Kraken does not list, or no pair at all.
    :raises InstrumentsUnavailable: Kraken's list could not be had.
    """
    resolution = resolve_pair_specs(
        settings.pairs,
        settings.kraken_ws_url,
        settings.kraken_rest_url,
        max_message=settings.max_ws_message_mb * 2**20,
        max_body=settings.max_rest_body_mb * 2**20,
    )
    return replace(settings, pairs=resolution.pairs), resolution.from_patterns


def build_dataframe(
    app: Application,
    settings: TradesSettings,
    transforms: Sequence[Transform] = (),
    history: HistoryEnd | None = None,
    observability: Observability | None = None,
    optional_pairs: frozenset[str] = frozenset(),
) -> StreamingDataFrame:
    """The declarative part of the pipeline; `transforms` run just before `to_topic`.

    :param history: with `backfill_only`, notes the end of the history and stops the app.
    :param observability: the metrics server (`metrics_port`): counts and health checks.
    """
    metrics = observability.metrics if observability is not None else None
    pairs = frozenset(settings.pairs)
    output = output_topic(app, settings, settings.output)
    # what will never be published, once per gap (schemas/gap.v1.json)
    gaps = output_topic(app, settings, settings.gaps_output)
    check_output_partitions(app, settings, output.name, gaps.name)
    already = seed_from_output(app, settings, output.name)
    dedupe = DropPublished(
        dedupe_seed(settings, already),
        on_dropped=metrics.count_duplicates if metrics is not None else None,
        gap_seed=seed_from_gaps(app, settings, gaps.name),
    )
    source = make_source(settings, optional_pairs, already.positions())
    sdf = app.dataframe(source=source)
    source.start_positions = latest(
        source.start_positions, seed_from_source_topic(app, settings, sdf.topics[0].name)
    )
    if history is not None:
        sdf = sdf.update(history.step(app), metadata=True)
    sdf = sdf.apply(dedupe, stateful=True)  # never the same trade_id twice per pair
    gap_writer = GapWriter(sdf, gaps)
    if metrics is not None:
        metrics.follow_gap_writer(gap_writer)
    sdf = sdf.update(gap_writer, metadata=True)  # gap events -> the gaps topic
    sdf = sdf.filter(trades_of(pairs))  # trade messages of the pairs go on (once a message)
    sdf = sdf.apply(normalize_trades, expand=True)  # one message's trades -> one row each
    sdf = sdf.set_timestamp(lambda record, key, timestamp, headers: record["timestamp_ms"])
    sdf = apply_transforms(sdf, transforms)  # the extension point: see `transforms` in README
    if observability is not None:
        observability.watch(app)  # /healthz follows the loop, /readyz the broker
        sdf.to_topic(output, key=metrics.output_key)  # the pair, counting the records
    else:
        sdf.to_topic(output, key=lambda record: record["pair"])
    return sdf


def created_topics(settings: TradesSettings) -> dict[str, TopicConfig]:
    """Every topic this pipeline creates, besides Quix Streams' changelogs, with its settings:
    the output and gaps topics (`partitions`, `retention`) and the source topic, which Quix
    Streams names `source__<the source's name>`. quix.yaml declares the same."""
    written = topic_config(settings.partitions, settings.retention_ms)
    source = shards.source_name(settings.output, settings.shard, settings.shards)
    return {
        settings.output: written,
        settings.gaps_output: written,
        f"source__{source}": SOURCE_TOPIC,
    }


def output_topic(app: Application, settings: TradesSettings, name: str) -> Topic:
    """A topic the pipeline writes JSON to, keyed by pair: `partitions`, `retention`."""
    return app.topic(
        name,
        key_serializer="string",
        value_serializer="json",
        config=created_topics(settings)[name],
    )


class HistoryEnd:
    """`backfill_only`: stop the application at the source's end-of-history marker, once
    everything before it went through, and keep how the history ended (its header)."""

    def __init__(self) -> None:
        self.outcome: str | None = None  # one of BACKFILL_OUTCOMES once the marker was seen

    @property
    def reached(self) -> bool:
        return self.outcome is not None

    def exit_code(self) -> int:
        """The process's exit code for how the history ended (see the README)."""
        return {
            None: EXIT_HISTORY_INCOMPLETE,
            "complete": EXIT_OK,
            "rest_unusable": EXIT_CONFIG,
            "deadline": EXIT_BACKFILL_DEADLINE,
        }.get(self.outcome, EXIT_FAILED)

    def step(self, app: Application):
        def stop_at_marker(value, key, timestamp, headers) -> None:
            for name, raw in headers or ():
                if name == END_OF_BACKFILL_HEADER:
                    self.outcome = _header_text(raw) or "complete"
                    logger.info("Backfill over (%s): every trade fetched is written", self.outcome)
                    app.stop()

        return stop_at_marker


def _header_text(raw: object) -> str:
    """A header value as text (bytes or str); the marker of older versions said b"1"."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
    return text if text in BACKFILL_OUTCOMES else "complete"


# Consumer settings (see bench/ for the measurements behind them).
# The session timing (`session.timeout.ms`, `heartbeat.interval.ms`) is the broker's: see
# `sources.app.group_timing`.
CONSUMER_EXTRA_CONFIG: dict[str, str | int] = {
    # How long the broker may hold a fetch while it has nothing to give; Kafka and Redpanda
    # answer as soon as a record comes, so this only bounds how often an idle consumer asks.
    # On Tansu, 10 against 25 ms (docs/benchmark.md): p99 at 1,000 trades/s 28-33 against
    # 34-51 ms, at 10,000/s 45-107 against 93-141, CPU no higher; 5 and 7 ms gained nothing more.
    "fetch.wait.max.ms": 10,
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


def consumer_group(settings: TradesSettings) -> str:
    """The configured group; left at its default, one per shard (see README, Scaling out)."""
    return shards.consumer_group(
        settings.consumer_group, TradesSettings.consumer_group, settings.shard, settings.shards
    )


def make_application(settings: TradesSettings, timing: Mapping[str, int] = STANDARD) -> Application:
    """An Application on the configured broker, or on Quix Cloud's when it sets its token;
    its consumer group has the session `timing` (`group_timing` fits it to the broker), and
    the topics it creates are replicated as `replication` says (see `topic_manager`)."""
    return PipelineApplication(
        replication=settings.replication,
        broker_address=broker_connection(settings.broker_address, settings.broker_security),
        consumer_group=consumer_group(settings),
        auto_offset_reset="earliest",
        loglevel=settings.loglevel,
        processing_guarantee=settings.processing_guarantee,
        broker_availability_timeout=settings.broker_timeout,
        consumer_extra_config={**timing, **CONSUMER_EXTRA_CONFIG},
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
        "transactional.id": shards.transactional_id(
            consumer_group(settings), settings.output, settings.shard, settings.shards
        ),
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


def check_output_partitions(app: Application, settings: TradesSettings, *topics: str) -> None:
    """Refuse an existing output (or gaps) topic whose partition count is not `partitions`: its
    pairs would move to other partitions (raises `PartitionMismatch`, before anything runs)."""
    broker_config = app.config.broker_address.as_librdkafka_dict()
    for topic in topics:
        check_partitions(broker_config, topic, settings.partitions)


def seed_from_output(app: Application, settings: TradesSettings, topic: str) -> LastTradeIds:
    """Check the output topic's retention, and read each pair's last trade already there.

    In both modes it tells the source where a pair without a saved position starts (its
    `positions()`); in at-least-once mode it also seeds the dedupe step (see `steps.dedupe`).
    """
    broker_config = app.config.broker_address.as_librdkafka_dict()
    warn_if_retention_short(broker_config, topic, settings.retention_ms)
    seed = last_trade_ids(broker_config, topic, settings.pairs)
    if seed:
        logger.info(
            "Already in %s: %s",
            topic,
            ", ".join(f"{pair} up to trade_id {trade_id}" for pair, trade_id in seed.items()),
        )
    return seed


def seed_from_source_topic(
    app: Application, settings: TradesSettings, topic: str
) -> dict[str, tuple[int, int]]:
    """Each pair's last trade among the source topic's last `SOURCE_TAIL` messages: what an
    earlier run's source wrote there. Its dataframe may not have written it out yet, yet a new
    consumer group's dataframe will (it reads the source topic from its start): a pair without
    a saved position starts after it, not at its first live trade. (Not a dedupe seed: those
    trades are still to be published.)"""
    broker_config = app.config.broker_address.as_librdkafka_dict()
    found = last_trade_ids(broker_config, topic, tail=SOURCE_TAIL, max_records=SOURCE_TAIL)
    return {pair: pos for pair, pos in found.positions().items() if pair in settings.pairs}


def dedupe_seed(settings: TradesSettings, seed: LastTradeIds) -> dict[str, int]:
    """The dedupe step's seed: the output's last trade_ids, in at-least-once mode only (in
    exactly-once mode its state commits with the output, and a broker that returns aborted
    records to read_committed readers, as Tansu does, would make the seed run ahead)."""
    return {} if settings.processing_guarantee == "exactly-once" else dict(seed)


def seed_from_gaps(app: Application, settings: TradesSettings, topic: str) -> dict[str, int]:
    """In at-least-once mode, each pair's last gap event already in the gaps topic (its tail):
    the dedupe step does not write it again (see `steps.dedupe`)."""
    if settings.processing_guarantee == "exactly-once":
        return {}
    broker_config = app.config.broker_address.as_librdkafka_dict()
    found = last_trade_ids(broker_config, topic, id_field="last_trade_id")
    return {pair: last_id for pair, last_id in found.items() if pair in settings.pairs}


def run(
    settings: TradesSettings,
    transforms: Sequence[Transform],
    history: HistoryEnd | None = None,
    observability: Observability | None = None,
    optional_pairs: frozenset[str] = frozenset(),
) -> None:
    """Run the pipeline until it is stopped."""
    connection = broker_connection(settings.broker_address, settings.broker_security)
    run_application(
        lambda timing: make_application(settings, timing),
        lambda app: build_dataframe(
            app, settings, transforms, history, observability, optional_pairs
        ),
        settings.broker_timeout,
        group_timing(connection),
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    try:
        settings = TradesSettings.from_env()
        settings, optional_pairs = resolve_pairs(settings)  # `all`, `*/USD` -> symbols
        settings = shards.settings_for_shard(settings)  # this shard's pairs (all with one)
        transforms = load_transforms(settings.transforms)
    except ConfigError as exc:
        logger.error("Configuration error: %s", exc)
        return EXIT_CONFIG
    except InstrumentsUnavailable as exc:
        logger.error("Cannot resolve pairs: %s", exc)
        return EXIT_FAILED
    logger.info(
        "Starting: %d pair%s into %s (broker %s)",
        len(settings.pairs),
        "" if len(settings.pairs) == 1 else "s",
        settings.output,
        settings.broker_address,
    )
    history = HistoryEnd() if settings.backfill_only else None
    observability = None
    if settings.metrics_port:  # before the source's process starts: it inherits the setup
        try:
            observability = start_trades(
                settings.metrics_port,
                host=settings.metrics_host,
                backfill_only=settings.backfill_only,
            )
        except OSError as exc:
            logger.error(
                "Configuration error: metrics_port %d on metrics_host %s: %s",
                settings.metrics_port,
                settings.metrics_host,
                exc,
            )
            return EXIT_CONFIG
    broker = None
    try:
        broker = _start_embedded_broker_if_needed(settings)
        run(settings, transforms, history, observability, optional_pairs)
    except SourceException as exc:
        logger.error("The Kraken source failed: %s", exc.__cause__ or exc)
        return EXIT_FAILED
    except BrokerUnavailable as exc:
        logger.error("Broker unavailable: %s", exc)
        return EXIT_FAILED
    except PartitionMismatch as exc:
        logger.error("Configuration error: %s", exc)
        return EXIT_CONFIG
    finally:
        if broker:
            broker.stop()
        if observability:
            observability.stop()
    if history is not None:
        if not history.reached:
            logger.error("Stopped before the history was complete: the dataset is partial")
        return history.exit_code()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
