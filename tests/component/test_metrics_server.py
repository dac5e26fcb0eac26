"""The metrics server over real HTTP: the exposition parses, health answers 200 or 503 with
a short text, an unknown path 404, and a port in use fails at start."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from sources.observability.health import Health
from sources.observability.metrics import SourceMetricSet
from sources.observability.server import MetricsServer
from tests.support.metrics import get, scrape


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def scrapes() -> list[float]:
    return []


@pytest.fixture
def server(registry: CollectorRegistry, scrapes: list[float]) -> Iterator[MetricsServer]:
    server = MetricsServer(
        0, Health(source=True), registry=registry, before_scrape=[lambda: scrapes.append(1)]
    )
    server.start()
    yield server
    server.stop()


def test_metrics_health_and_readiness_over_http(
    server: MetricsServer, registry: CollectorRegistry, scrapes: list[float]
) -> None:
    source = SourceMetricSet(registry)
    source.published.labels("BTC/USD", "ws").inc(3)
    s = scrape(server.port)
    assert s.value("kraken_trades_published_total", pair="BTC/USD", origin="ws") == 3
    assert scrapes == [1]  # the hooks (e.g. flushing buffered counts) ran first
    assert s.families["kraken_trades_published"].type == "counter"
    assert get(server.port, "/healthz")[0] == 200  # starting
    status, body = get(server.port, "/readyz")
    assert status == 503 and body.startswith("not ready: ") and "source not started" in body
    server.health.beat()
    source.heartbeat.set(time.time())
    source.pairs_configured.set(1)
    source.pairs_subscribed.set(1)
    source.pair_subscribed.labels("BTC/USD").set(1)
    assert get(server.port, "/readyz") == (200, "ready\n")
    source.heartbeat.set(time.time() - 3600)
    status, body = get(server.port, "/healthz")
    assert status == 503 and "source loop: no turn for" in body
    assert get(server.port, "/nothing")[0] == 404


def test_a_port_in_use_fails_at_start(server: MetricsServer) -> None:
    with pytest.raises(OSError):
        MetricsServer(server.port, Health(), registry=CollectorRegistry()).start()
