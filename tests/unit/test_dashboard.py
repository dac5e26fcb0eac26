"""deploy/grafana: the dashboard shows what it promises, on metrics the pipelines define.

Grafana itself is not run here: the dashboard JSON is checked as Grafana's dashboard model
(panels, grid, targets), and every metric a panel or an alert names must be one the pipelines
define (sources.observability). promtool parses every query in
tests/component/test_dashboard.py.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

from tests.support.grafana import DASHBOARD, GRAFANA, PROMISES, dashboard, panel_queries, panels
from tests.support.prometheus import ALERTS, rules
from tests.support.repo import ROOT, load_yaml

DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
COMPOSE = ROOT / "compose.yaml"

PANEL_TYPES = {"row", "timeseries", "stat"}
# Series Prometheus makes itself, not the pipelines.
PROMETHEUS_SERIES = {"up"}
METRIC = re.compile(r"\b(kraken_[a-z0-9_]+)\b")


def panel(title: str) -> dict[str, Any]:
    found = [p for p in panels() if p["title"] == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def alert_queries() -> list[str]:
    return [rule["expr"] for rule in rules()]


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (ours all start with `kraken_`), plus `up`."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    names = set(METRIC.findall(without_strings))
    if re.search(r"\bup\s*(\{|\[|\)|\s|$|==)", without_strings):
        names.add("up")
    return names


@cache
def defined_series() -> frozenset[str]:
    """Every series name the pipelines' metrics expose: each metric set of
    sources.observability.metrics, created in a registry of its own, by type."""
    from prometheus_client import CollectorRegistry

    from sources.observability.metrics import CandlesMetrics, DataframeMetrics, SourceMetricSet

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for metric_set in (SourceMetricSet, DataframeMetrics, CandlesMetrics):
        registry = CollectorRegistry()
        metric_set(registry)
        for family in registry.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return frozenset(names)


# --- the dashboard model ------------------------------------------------------------------


def test_it_is_a_grafana_dashboard_model() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert {p["type"] for p in board["panels"]} <= PANEL_TYPES
    assert {"timeseries", "stat"} <= {p["type"] for p in board["panels"]}


def test_the_panels_tile_the_grid_without_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for p in dashboard()["panels"]:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, p["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{p['title']!r} overlaps another panel"
        taken |= cells


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    for p in panels():
        assert p["targets"], f"{p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for where in (p, *p["targets"]):
            assert where["datasource"] == {"type": "prometheus", "uid": source["uid"]}, p["title"]


@pytest.mark.parametrize("title", sorted(PROMISES))
def test_the_dashboard_shows_what_it_promises(title: str) -> None:
    exprs = [t["expr"] for t in panel(title)["targets"]]
    missing = [q for q in PROMISES[title] if q not in exprs]
    assert not missing, f"{title!r} lacks {missing}; it has {exprs}"


def test_the_pair_variable_lists_the_pairs_that_trade() -> None:
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "pair"]
    assert variable["type"] == "query" and variable["includeAll"] and variable["multi"]
    assert variable["allValue"] == ".*"
    assert "label_values(kraken_trades_published_total, pair)" in variable["definition"]


# --- metric names: the dashboard and the alerts use what the code defines -----------------


def test_metric_names_are_found_in_expressions() -> None:
    """The parser the next tests rely on finds names, and not label values or functions."""
    assert metric_names('sum by (pair) (rate(kraken_trades_x_total{pair=~"kraken_y"}[1m]))') == {
        "kraken_trades_x_total"
    }
    assert metric_names('up{job=~"kraken-trades"} == 0') == {"up"}
    assert metric_names("histogram_quantile(0.5, sum by (le) (rate(kraken_a_bucket[1m])))") == {
        "kraken_a_bucket"
    }


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_used_is_defined_by_the_pipelines(source: str) -> None:
    queries = panel_queries() if source == "dashboard" else alert_queries()
    used = set().union(*map(metric_names, queries))
    assert used, f"no metric found in the {source}"
    unknown = used - defined_series() - PROMETHEUS_SERIES
    assert not unknown, f"the {source} name metrics no pipeline defines: {sorted(unknown)}"


def test_the_dashboard_covers_every_metric_the_pipelines_define() -> None:
    """A metric the code adds but no panel shows is a gap in the dashboard."""
    used = set().union(*map(metric_names, panel_queries()))
    shown_otherwise = {
        "kraken_trades_last_trade_timestamp_seconds": "Seconds since last trade",
        "kraken_trades_backfilled_total": "Trades/s by origin, origin=rest",
        "kraken_trades_source_heartbeat_timestamp_seconds": "/healthz",
        "kraken_trades_publish_latency_seconds_sum": "Publish latency (the buckets)",
        "kraken_trades_publish_latency_seconds_count": "Publish latency (the buckets)",
    }
    missing = defined_series() - used - set(shown_otherwise)
    assert not missing, f"metrics no panel shows: {sorted(missing)}"


# --- wiring: compose mounts what the provisioning files name -------------------------------


def test_compose_wires_grafana_to_prometheus_and_the_dashboard() -> None:
    services = load_yaml(COMPOSE)["services"]
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert any(str(p).endswith(":9090") for p in services["prometheus"]["ports"])
    mounts = dict(m.split(":")[:2] for m in services["grafana"]["volumes"])
    (provider,) = load_yaml(PROVIDERS)["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    environment = services["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    prometheus_mounts = dict(m.split(":")[:2] for m in services["prometheus"]["volumes"])
    assert prometheus_mounts["./deploy/prometheus"] == "/etc/prometheus"
    assert ALERTS.parent.name == "prometheus"


@pytest.mark.parametrize(("service", "port"), [("trades", "9108"), ("candles", "9109")])
def test_compose_pipelines_serve_metrics_where_prometheus_scrapes(service: str, port: str) -> None:
    services = load_yaml(COMPOSE)["services"]
    assert services[service]["environment"]["metrics_port"] == port
    assert f"127.0.0.1:{port}/healthz" in " ".join(services[service]["healthcheck"]["test"])
    config = load_yaml(ALERTS.parent / "prometheus.yml")
    targets = {
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    assert f"{service}:{port}" in targets
