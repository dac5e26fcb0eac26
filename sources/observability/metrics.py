"""The pipelines' Prometheus metrics: definitions, one set per process, and cheap counting.

Names are fixed (README, Metrics). Each process creates its set once (`source_metric_set` in
the source's process, `dataframe_metrics` / `candles_metrics` in the main one); the sets are
not registered in any registry: in multiprocess mode the server reads every process's file.
Tests pass a `CollectorRegistry` of their own instead.

Gauges written by the source's process use the `livemostrecent` mode: the newest value wins
across processes (a source restarted in-process is a new process), and the gauges of a
process that has ended are dropped (`multiproc.reap_dead_processes`).
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "LATENCY_BUCKETS",
    "CandlesMetrics",
    "DataframeMetrics",
    "SourceMetricSet",
    "candles_metrics",
    "dataframe_metrics",
]

# exchange time -> produced: live trades take milliseconds to a second; trades held behind a
# repair, seconds to minutes
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LIVE = "livemostrecent"


# The source's metrics: attribute -> (kind, name, help, labels). Names are fixed (docs).
SOURCE_METRICS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "published": (
        "counter",
        "kraken_trades_published_total",
        "Trades published to the source topic (origin: ws live, rest repaired or backfill)",
        ("pair", "origin"),
    ),
    "gaps_found": (
        "counter",
        "kraken_trades_gaps_found_total",
        "Gaps found in the live trade_id sequence",
        ("pair",),
    ),
    "gaps_repaired": (
        "counter",
        "kraken_trades_gaps_repaired_total",
        "Gaps closed from Kraken REST",
        ("pair",),
    ),
    "gaps_unrepaired": (
        "counter",
        "kraken_trades_gaps_unrepaired_total",
        "Trade_id ranges that will never be published (reason: rest_lacks and unreadable "
        "are proven by Kraken's REST; see the gap events)",
        ("pair", "reason"),
    ),
    "missed": (
        "counter",
        "kraken_trades_missed_total",
        "Trades in the unrepaired gaps",
        ("pair", "reason"),
    ),
    "regressions": (
        "counter",
        "kraken_trades_sequence_regressions_total",
        "Times a pair's trade_ids went back (newer trades with lower ids)",
        ("pair",),
    ),
    "repair_stalled": (
        "gauge",
        "kraken_trades_repair_stalled_seconds",
        "Seconds the pair's repair has gone without progress while Kraken REST fails "
        "or lags (0: no repair, or it advances)",
        ("pair",),
    ),
    "pair_unready": (
        "gauge",
        "kraken_trades_pair_unready",
        "1 while the pair makes /readyz answer 503 (reason: repair_stalled, "
        "rest_unusable, sequence_regression)",
        ("pair", "reason"),
    ),
    "backfilled": (  # deprecated: the same count, under the name it had
        "counter",
        "kraken_trades_backfilled_total",
        'Deprecated (use kraken_trades_published_total{origin="rest"}): trades published '
        "from Kraken REST, repairs included",
        ("pair",),
    ),
    "duplicates_dropped": (
        "counter",
        "kraken_trades_duplicates_dropped_total",
        "Trades dropped as already published (stage: source or dataframe)",
        ("stage",),
    ),
    "out_of_sequence": (
        "counter",
        "kraken_trades_out_of_sequence_total",
        "Live trades dropped as out of sequence",
        ("pair",),
    ),
    "malformed": (
        "counter",
        "kraken_trades_malformed_total",
        "Unreadable input: WebSocket frames or trades (ws), REST rows (rest)",
        ("input",),
    ),
    "reconnects": (
        "counter",
        "kraken_trades_reconnects_total",
        "WebSocket disconnections followed by a reconnect",
        (),
    ),
    "rest_calls": (
        "counter",
        "kraken_trades_rest_calls_total",
        "Kraken REST calls by outcome (ok, throttled, error)",
        ("outcome",),
    ),
    "stale_probes": (
        "counter",
        "kraken_trades_stale_probes_total",
        "Checks of subscriptions silent for stale_after (result: quiet or newer)",
        ("result",),
    ),
    "held": ("gauge", "kraken_trades_held", "Live trades held behind a repair", ("pair",)),
    "last_trade_timestamp": (
        "gauge",
        "kraken_trades_last_trade_timestamp_seconds",
        "Exchange time of the pair's last published trade (Unix seconds)",
        ("pair",),
    ),
    "seconds_since_last_trade": (
        "gauge",
        "kraken_trades_seconds_since_last_trade",
        "Seconds from the pair's last published trade to the last update of this gauge",
        ("pair",),
    ),
    "backfill_progress": (
        "gauge",
        "kraken_trades_backfill_progress_ratio",
        "Backfill (backfill_since) done, 0 to 1",
        ("pair",),
    ),
    "pair_subscribed": (
        "gauge",
        "kraken_trades_pair_subscribed",
        "1 while the pair's subscription is acknowledged",
        ("pair",),
    ),
    "pairs_configured": (
        "gauge",
        "kraken_trades_pairs_configured",
        "Pairs this source streams",
        (),
    ),
    "pairs_subscribed": (
        "gauge",
        "kraken_trades_pairs_subscribed",
        "Pairs whose subscription is acknowledged now",
        (),
    ),
    "connections_open": (
        "gauge",
        "kraken_trades_connections_open",
        "WebSocket connections open now",
        (),
    ),
    "heartbeat": (
        "gauge",
        "kraken_trades_source_heartbeat_timestamp_seconds",
        "When the source's loop last turned (Unix seconds); /healthz checks it",
        (),
    ),
}


class SourceMetricSet:
    """The metrics the Kraken source's process writes (see `sync.SourceMetrics`): one
    attribute per entry of `SOURCE_METRICS`, and the publish-latency histogram."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        for attribute, (kind, name, doc, labels) in SOURCE_METRICS.items():
            if kind == "counter":
                metric: Any = Counter(name, doc, labels, registry=registry)
            else:
                metric = Gauge(name, doc, labels, registry=registry, multiprocess_mode=LIVE)
            setattr(self, attribute, metric)
        self.publish_latency = Histogram(
            "kraken_trades_publish_latency_seconds",
            "Exchange time of the newest live trade of a source-topic message -> produced",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )


class DataframeMetrics:
    """The trades pipeline's main process: what the dataframe wrote, and the broker.

    `output_key` is the output's key function: it counts each record as `to_topic` writes it
    into a plain integer (no lock, no file), which `flush` (called before every scrape) adds
    to the counter; gap events are counted the same way from the gap writer's own count
    (`follow_gap_writer`).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.output_records = Counter(
            "kraken_trades_output_records_total",
            "Records written to the output topic",
            registry=registry,
        )
        self.gap_events = Counter(
            "kraken_trades_gap_events_total",
            "Records written to the gaps topic",
            registry=registry,
        )
        self.duplicates_dropped = Counter(
            "kraken_trades_duplicates_dropped_total",
            "Trades dropped as already published (stage: source or dataframe)",
            ("stage",),
            registry=registry,
        ).labels(stage="dataframe")
        self.broker_up = Gauge(
            "kraken_trades_broker_up",
            "1 when the broker answered the last check, else 0",
            registry=registry,
            multiprocess_mode=LIVE,
        )
        self._written = 0
        self._flushed = 0
        self._gap_writer: Any = None
        self._gaps_flushed = 0
        self._lock = threading.Lock()

    def output_key(self, record: dict[str, Any]) -> str:
        """The key of an output record (its pair); counts the record."""
        self._written += 1
        return record["pair"]

    def follow_gap_writer(self, writer: Any) -> None:
        """Count the gap events `writer` writes from now on (its `written`; a new writer
        replaces the previous one, e.g. when the application starts over)."""
        self.flush()
        with self._lock:
            self._gap_writer = writer
            self._gaps_flushed = writer.written

    def flush(self) -> None:
        """Add what was counted since the last flush to the counters (any thread)."""
        with self._lock:
            written = self._written
            if written != self._flushed:
                self.output_records.inc(written - self._flushed)
                self._flushed = written
            if self._gap_writer is not None:
                gaps = self._gap_writer.written
                if gaps > self._gaps_flushed:
                    self.gap_events.inc(gaps - self._gaps_flushed)
                    self._gaps_flushed = gaps

    def count_duplicates(self, count: int) -> None:
        """Trades the dedupe step dropped."""
        self.duplicates_dropped.inc(count)

    def set_broker_up(self, up: bool) -> None:
        self.broker_up.set(1 if up else 0)


class CandlesMetrics:
    """The candles pipeline: candles emitted, by whether their window had every trade."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.emitted = Counter(
            "kraken_candles_emitted_total",
            "Candles written to the output topic (complete: false when trades may be missing)",
            ("complete",),
            registry=registry,
        )
        self._complete = self.emitted.labels(complete="true")
        self._incomplete = self.emitted.labels(complete="false")

    def count_candle(self, record: dict[str, Any]) -> None:
        """Count one emitted candle (an `sdf.update` step); without a `complete` flag, it is."""
        if record.get("complete", True) is False:
            self._incomplete.inc()
        else:
            self._complete.inc()

    def flush(self) -> None:
        """Nothing is buffered."""


_dataframe: DataframeMetrics | None = None
_candles: CandlesMetrics | None = None
_lock = threading.Lock()


def dataframe_metrics() -> DataframeMetrics:
    """This process's `DataframeMetrics` (created on first use)."""
    global _dataframe
    with _lock:
        if _dataframe is None:
            _dataframe = DataframeMetrics()
        return _dataframe


def candles_metrics() -> CandlesMetrics:
    """This process's `CandlesMetrics` (created on first use)."""
    global _candles
    with _lock:
        if _candles is None:
            _candles = CandlesMetrics()
        return _candles
