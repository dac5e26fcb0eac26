"""A real Prometheus scrapes a running trades pipeline and sees what the pipeline counts.

Prometheus (`/usr/bin/prometheus` from Debian's `prometheus` package, or `PROMETHEUS`) runs on
a free loopback port with a temporary storage folder, scraping the pipeline's `metrics_port`
every second and loading deploy/prometheus/alerts.yml. Without the binary the test fails
rather than skips: CI installs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from simulator import KrakenSimulator, Market
from tests.support.grafana import PROMISES, filled_panel_queries
from tests.support.kafka import free_port
from tests.support.metrics import scrape
from tests.support.prometheus import ALERTS, find_binary
from tests.support.trades import PAIRS, trades_pipeline, wait_for_trades

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(PAIRS, seed=11),
    pytest.mark.kraken(rate=40.0, batch=3, heartbeat_interval=0.5),
]

JOB = "kraken-trades"  # the job name of deploy/prometheus/prometheus.yml, which the alerts use
PUBLISHED = "kraken_trades_published_total"


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call `check` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as error:  # not listening yet
            last = error
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: never happened within {timeout} s (last: {last!r})")


class PrometheusApi:
    """The HTTP API of a Prometheus server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = json.loads(get(f"{self.url}{path}{query}"))
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": {...}, "value": [time, "text"]}, ...]."""
        return self.call("/api/v1/query", query=expr)["result"]

    def scalar(self, expr: str) -> float | None:
        """The value of a one-series query, None while it has no series."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@contextmanager
def prometheus_server(metrics_port: int, workdir: Path) -> Iterator[PrometheusApi]:
    """Prometheus scraping 127.0.0.1:`metrics_port` every second, with the repository's alerts."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    log_path = workdir / "prometheus.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            find_binary("prometheus", "PROMETHEUS"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    api = PrometheusApi(f"http://127.0.0.1:{port}")
    try:

        def ready() -> bytes:
            assert process.poll() is None, f"Prometheus exited: {log_path.read_text()[-3000:]}"
            return get(f"{api.url}/-/ready")

        eventually(ready, 20, "Prometheus ready")
        yield api
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_the_pipeline_and_loads_the_alerts(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    metrics_port = free_port()
    pipeline = trades_pipeline(broker, kraken, tmp_path, metrics_port=str(metrics_port))
    with pipeline, prometheus_server(metrics_port, tmp_path / "prometheus") as prometheus:
        pipeline.wait_for_log(r"Subscribed to ETH/USD")
        wait_for_trades(market, 10)
        eventually(lambda: prometheus.scalar(f'up{{job="{JOB}"}}') == 1, 15, "the pipeline scraped")

        # trading stops: the pipeline's counter settles, and Prometheus reports the same
        kraken.pause_trades(True)

        def settled() -> float | None:
            before = scrape(metrics_port).value(PUBLISHED)  # every pair and origin
            time.sleep(1.5)  # more than one sync of the source's counters (1 s)
            return (
                before if before > 0 and scrape(metrics_port).value(PUBLISHED) == before else None
            )

        published = eventually(settled, 15, "the published count settled")
        eventually(
            lambda: prometheus.scalar(f"sum({PUBLISHED})") == published,
            10,
            f"Prometheus showing {published:.0f} published trades",
        )
        per_pair = prometheus.query(f"sum by (pair) ({PUBLISHED})")
        assert {series["metric"]["pair"] for series in per_pair} == set(PAIRS)
        assert prometheus.scalar(f'kraken_trades_broker_up{{job="{JOB}"}}') == 1
        assert prometheus.scalar("sum(kraken_trades_publish_latency_seconds_count)") > 0

        # every dashboard query runs on the real series; trades/s per pair shows both pairs
        for query in filled_panel_queries():
            prometheus.query(query)  # fails unless Prometheus answers "success"
        rates = prometheus.query(PROMISES["Trades/s per pair"][0].replace("$pair", ".*"))
        assert {series["metric"]["pair"] for series in rates} == set(PAIRS)

        # the alert rules are loaded, evaluate without error, and none fires on a healthy run
        rules = eventually(lambda: evaluated_alert_rules(prometheus), 10, "the alerts evaluated")
        assert {rule["name"] for rule in rules} == alert_names()
        assert all(rule["health"] == "ok" for rule in rules), rules
        assert [rule["name"] for rule in rules if rule["state"] != "inactive"] == []
        assert pipeline.stop() == 0


def evaluated_alert_rules(prometheus: PrometheusApi) -> list[dict[str, Any]] | None:
    """The alert rules Prometheus has loaded, once it has evaluated every one of them."""
    groups = prometheus.call("/api/v1/rules", type="alert")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    never = "0001-01-01T00:00:00Z"  # Go's zero time: not evaluated yet
    return rules if rules and all(rule["lastEvaluation"] != never for rule in rules) else None


def alert_names() -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)", ALERTS.read_text(encoding="utf-8"), re.MULTILINE))
