"""Prometheus metrics and health endpoints for the pipelines.

The trades pipeline runs in two processes: the Kraken source in one that Quix Streams spawns,
the dataframe in the main one. Both write their metrics with `prometheus_client` in its
multiprocess mode (one memory-mapped file per process, in `PROMETHEUS_MULTIPROC_DIR`), and
the main process serves them merged, with `/healthz` and `/readyz`, on `metrics_port`:

    multiproc   the directory and its environment variable, set before any metric exists
    metrics     the metric definitions (names fixed in the README) and the cheap counters
    sync        the source process: copies its counters into the metrics about once a second
    health      what /healthz and /readyz answer (loops alive, pairs subscribed, broker up)
    server      the HTTP server (standard library) in a daemon thread of the main process

Importing this package loads no `prometheus_client`; `sources.kraken` imports `sync` only
when metrics are on, in the source's own process.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from .multiproc import enabled

if TYPE_CHECKING:
    from .sync import SourceMetrics

__all__ = ["source_metrics"]


def source_metrics(
    pairs: Collection[str], backfill_since_ns: int | None = None
) -> SourceMetrics | None:
    """The Kraken source's metrics, for its own process; None while metrics are off (the
    main process enables them, before it starts the source's process, when `metrics_port`
    is set). Loads `prometheus_client` only when they are on."""
    if not enabled():
        return None
    from .sync import SourceMetrics

    return SourceMetrics(pairs, backfill_since_ns)
