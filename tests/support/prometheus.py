"""Prometheus for the tests: its binaries (Debian's `prometheus` package; `.ci/run` installs
it), and deploy/prometheus's files (the alert rules, their unit tests, the scrape config)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.repo import ROOT, load_yaml

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"

# What each alert watches (issue 10): alert name -> the metric its expression must use.
WATCHES = {
    "KrakenTradesGapUnrepaired": "kraken_trades_gaps_unrepaired_total",
    "KrakenTradesPairSilent": "kraken_trades_seconds_since_last_trade",
    "KrakenTradesReconnectStorm": "kraken_trades_reconnects_total",
    "KrakenTradesBrokerDown": "kraken_trades_broker_up",
    "KrakenPipelineDown": "up",
    # issue 16: waits on Kraken REST are escalated, never turned into holes
    "KrakenTradesRepairStalled": "kraken_trades_repair_stalled_seconds",
    "KrakenTradesPairBlocked": "kraken_trades_pair_unready",
}


def find_binary(name: str, variable: str) -> str:
    """`name` from `$variable` or the PATH, else a failure (not a skip) saying how to get it."""
    found = os.environ.get(variable) or shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found: install Prometheus (Debian/Ubuntu: apt-get install prometheus; "
            f"macOS: brew install prometheus) or set {variable} to its path"
        )
    return found


def promtool(*args: str | Path, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    """`promtool <args>` run in `cwd` (`PROMTOOL` may name the binary), its output captured."""
    return subprocess.run(
        [find_binary("promtool", "PROMTOOL"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rules() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, across its groups."""
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    """The alerting rules of alerts.yml by alert name."""
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}
