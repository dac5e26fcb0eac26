"""deploy/grafana's dashboard as the tests read it: its panels, their queries, and the queries
each panel promises (issue 10)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.support.repo import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kraken-trades.json"

PAIR = '{pair=~"$pair"}'
LATENCY = (
    "histogram_quantile({q}, sum by (le) (rate(kraken_trades_publish_latency_seconds_bucket[1m])))"
)
# Panel title -> the queries it promises (issue 10), exactly as Grafana runs them.
PROMISES = {
    "Trades/s per pair": [f"sum by (pair) (rate(kraken_trades_published_total{PAIR}[1m]))"],
    "Gaps found / repaired / unrepaired": [
        f"sum by (pair) (increase(kraken_trades_gaps_{what}_total{PAIR}[5m]))"
        for what in ("found", "repaired", "unrepaired")
    ],
    "Publish latency": [LATENCY.format(q=q) for q in ("0.5", "0.95", "0.99")],
    "Seconds since last trade": [f"max by (pair) (kraken_trades_seconds_since_last_trade{PAIR})"],
    "Reconnects": ["sum(increase(kraken_trades_reconnects_total[5m]))"],
    "Held trades": [f"sum by (pair) (kraken_trades_held{PAIR})"],
    "REST calls by outcome": ["sum by (outcome) (rate(kraken_trades_rest_calls_total[1m]))"],
    "Broker": ["min(kraken_trades_broker_up)"],
}
# Grafana's variables, replaced by a value of their kind before promtool parses a query.
GRAFANA_VARIABLES = {
    "$pair": ".*",
    "$__range": "1h",
    "$__rate_interval": "1m",
    "$__interval": "15s",
}


@cache
def dashboard() -> dict[str, Any]:
    """The dashboard JSON (Grafana's dashboard model)."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    """The panels that show data (rows left out)."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def panel_queries() -> list[str]:
    """Every panel's queries, as Grafana runs them (variables unreplaced)."""
    return [target["expr"] for p in panels() for target in p["targets"]]


def filled_panel_queries() -> list[str]:
    """The panels' queries with Grafana's variables replaced by values of their kind."""
    queries = panel_queries()
    for name, value in GRAFANA_VARIABLES.items():
        queries = [query.replace(name, value) for query in queries]
    return queries
