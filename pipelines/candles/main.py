"""Trades -> OHLCV candles: one candle per pair and tumbling window of event time.

    input (trades) -> skip non-trades -> event time = timestamp_ms
        -> tumbling_window(candle_seconds, grace_seconds, on_late=count)
        -> reduce(add_trade, start_candle) -> final() -> candle_record
        -> Continuity (`complete`, state per pair) -> to_topic(output)

A candle is emitted once its window closes: when a later trade of the same pair arrives
at or after window end + grace (closing strategy "key"). Windows without trades emit
nothing. The candle's Kafka timestamp is its window start; its key is the pair.

Run: `python pipelines/candles/main.py`, or `quix run` / `python main.py`
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
from collections.abc import Mapping

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import TopicConfig

from sources.app.group_timing import STANDARD, group_timing
from sources.app.run import broker_connection, run_application
from sources.app.settings import ConfigError
from sources.app.topic_manager import PipelineApplication
from sources.app.topics import CANDLES_TOPIC
from sources.broker import BrokerUnavailable
from sources.candles import (
    CandlesSettings,
    CandleStats,
    Continuity,
    add_trade,
    candle_record,
    is_trade,
    start_candle,
)
from sources.candles.stats import Reporter
from sources.observability.app import Observability, start_candles

logger = logging.getLogger("candles")


def created_topics(settings: CandlesSettings) -> dict[str, TopicConfig]:
    """Every topic this pipeline creates, besides Quix Streams' changelogs, with its settings
    (quix.yaml declares the same). Never the trades topic: the trades pipeline's."""
    return {settings.output: CANDLES_TOPIC}


def build_dataframe(
    app: Application,
    settings: CandlesSettings,
    stats: CandleStats,
    observability: Observability | None = None,
) -> StreamingDataFrame:
    """The declarative part of the pipeline (`observability`: the metrics server, if on)."""
    # the trades topic is the trades pipeline's: waited for, never created (`never_create`)
    trades = app.topic(settings.input, key_deserializer="string", value_deserializer="json")
    output = app.topic(
        settings.output,
        key_serializer="string",
        value_serializer="json",
        config=created_topics(settings)[settings.output],
    )

    sdf = app.dataframe(trades)
    sdf = sdf.filter(_keep_trades(stats))
    sdf = sdf.set_timestamp(lambda trade, key, timestamp, headers: trade["timestamp_ms"])
    sdf = (
        sdf.tumbling_window(
            duration_ms=settings.candle_ms,
            grace_ms=settings.grace_ms,
            name="candles",
            on_late=stats.on_late,
        )
        .reduce(reducer=add_trade, initializer=start_candle)
        .final(closing_strategy="key")  # Kafka timestamp of each result: window start
    )
    sdf = sdf.apply(candle_record)
    sdf = sdf.apply(Continuity(), stateful=True)  # `complete`: no trade missing (per pair)
    sdf = sdf.update(stats.count_candle)
    if observability is not None:
        sdf = sdf.update(observability.metrics.count_candle)  # kraken_candles_emitted_total
        observability.watch(app)  # /healthz follows the loop, /readyz the broker
    sdf.to_topic(output)  # the key stays the pair
    return sdf


def _keep_trades(stats: CandleStats):
    """A filter that lets trades through and counts everything else."""

    def keep(record: object) -> bool:
        if is_trade(record):
            return True
        stats.count_invalid(record)
        return False

    return keep


def make_application(
    settings: CandlesSettings, timing: Mapping[str, int] = STANDARD
) -> Application:
    """An Application on the configured broker, or on Quix Cloud's when it sets its token;
    its consumer group has the session `timing` (`group_timing` fits it to the broker).
    It creates its output and changelogs (replicated as `replication` says), never the trades
    topic: that one is the trades pipeline's, with its retention (it waits for it)."""
    return PipelineApplication(
        replication=settings.replication,
        never_create=[settings.input],
        broker_address=broker_connection(settings.broker_address, settings.broker_security),
        consumer_group=settings.consumer_group,
        auto_offset_reset="earliest",
        loglevel=settings.loglevel,
        broker_availability_timeout=settings.broker_timeout,
        consumer_extra_config=dict(timing),
    )


def run(
    settings: CandlesSettings, stats: CandleStats, observability: Observability | None = None
) -> None:
    """Run the pipeline until it is stopped."""
    connection = broker_connection(settings.broker_address, settings.broker_security)
    run_application(
        lambda timing: make_application(settings, timing),
        lambda app: build_dataframe(app, settings, stats, observability),
        settings.broker_timeout,
        group_timing(connection),
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    try:
        settings = CandlesSettings.from_env()
    except ConfigError as exc:
        logger.error("Configuration error: %s", exc)
        return 2
    logger.info(
        "Candles of %s s (grace %s s) from %r to %r",
        settings.candle_ms / 1000,
        settings.grace_ms / 1000,
        settings.input,
        settings.output,
    )
    observability = None
    if settings.metrics_port:
        try:
            observability = start_candles(settings.metrics_port, host=settings.metrics_host)
        except OSError as exc:
            logger.error(
                "Configuration error: metrics_port %d on metrics_host %s: %s",
                settings.metrics_port,
                settings.metrics_host,
                exc,
            )
            return 2
    stats = CandleStats(settings.grace_ms)
    reporter = Reporter(stats, settings.stats_interval, logger)
    reporter.start()
    try:
        run(settings, stats, observability)
    except BrokerUnavailable as exc:
        logger.error("Broker unavailable: %s", exc)
        return 1
    finally:
        reporter.stop()
        if observability:
            observability.stop()
        logger.info("Stopped. %s", stats.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
