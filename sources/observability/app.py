"""Turning metrics on in a pipeline's main process: one call in `main()`.

`start_trades` / `start_candles` enable the multiprocess directory (before any metric
exists, and before Quix Streams spawns the source's process, which inherits it), create the
process's metrics and start the HTTP server. `prometheus_client` is imported only after
the directory is set, as its multiprocess mode requires.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .multiproc import enable

if TYPE_CHECKING:
    from .health import Health
    from .metrics import CandlesMetrics, DataframeMetrics
    from .server import MetricsServer

__all__ = ["Observability", "start_candles", "start_trades"]

logger = logging.getLogger(__name__)


@dataclass
class Observability:
    """The running metrics server of a pipeline, its health and its process's metrics."""

    server: MetricsServer
    health: Health
    metrics: Any  # DataframeMetrics (trades) or CandlesMetrics (candles)

    def watch(self, app: Any) -> None:
        """Follow this Quix Streams application (its loop's turns, its broker)."""
        self.health.watch(app)

    def stop(self) -> None:
        self.server.stop()


def start_trades(port: int, *, host: str = "", backfill_only: bool = False) -> Observability:
    """Metrics of both trades processes on `port` of `host` (`metrics_host`; "": every
    interface), with /healthz and /readyz.

    :raises OSError: when the port cannot be bound.
    """
    directory = enable()
    from .health import BrokerProbe, Health
    from .metrics import dataframe_metrics
    from .server import MetricsServer

    metrics: DataframeMetrics = dataframe_metrics()
    health = Health(
        source=True,
        require_subscriptions=not backfill_only,
        broker=BrokerProbe(),
        on_broker=metrics.set_broker_up,
    )
    server = MetricsServer(
        port, health, directory=directory, before_scrape=[metrics.flush], host=host
    )
    return Observability(server.start(), health, metrics)


def start_candles(port: int, *, host: str = "") -> Observability:
    """The candles pipeline's metrics on `port` of `host` (`metrics_host`; "": every
    interface), with /healthz and /readyz.

    :raises OSError: when the port cannot be bound.
    """
    directory = enable()
    from .health import BrokerProbe, Health
    from .metrics import candles_metrics
    from .server import MetricsServer

    metrics: CandlesMetrics = candles_metrics()
    health = Health(source=False, broker=BrokerProbe())
    server = MetricsServer(port, health, directory=directory, host=host)
    return Observability(server.start(), health, metrics)
