"""deploy/prometheus: the alert rules and the scrape config, checked and unit-tested by promtool.

`promtool` ships with Prometheus (Debian/Ubuntu: `apt-get install prometheus`; macOS:
`brew install prometheus`); `PROMTOOL` may name it. Without it these tests fail rather than
skip: CI installs it, and a silently skipped alert test proves nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from sources.app.variables import CANDLES, TRADES
from tests.support.prometheus import find_binary

ROOT = Path(__file__).resolve().parents[2]
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
PER_PAIR = {
    "KrakenTradesGapUnrepaired",
    "KrakenTradesPairSilent",
    "KrakenTradesRepairStalled",
    "KrakenTradesPairBlocked",
}
SEVERITIES = {"critical", "warning"}


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def find_promtool() -> str:
    """The promtool binary, or a failure that says how to install it."""
    return find_binary("promtool", "PROMTOOL")


def promtool(*args: str | Path, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_promtool(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def test_the_rules_file_is_valid() -> None:
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_config_is_valid_and_loads_the_rules() -> None:
    result = promtool("check", "config", CONFIG.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout


def test_every_alert_fires_on_a_failure_and_stays_quiet_when_healthy() -> None:
    result = promtool("test", "rules", ALERTS_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_watch_what_issue_10_asks() -> None:
    alerts = alert_rules()
    assert set(alerts) == set(WATCHES)
    for name, metric in WATCHES.items():
        assert re.search(rf"\b{metric}\b", alerts[name]["expr"]), (name, alerts[name]["expr"])


@pytest.mark.parametrize("name", sorted(WATCHES))
def test_each_alert_has_a_severity_and_says_what_and_where(name: str) -> None:
    rule = alert_rules()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    where = "{{ $labels.pair }}" if name in PER_PAIR else "{{ $labels.instance }}"
    assert where in annotations["summary"] + annotations["description"], annotations


@pytest.mark.parametrize("name", sorted(WATCHES))
def test_each_alert_has_a_firing_and_a_quiet_unit_test(name: str) -> None:
    cases = [
        case
        for test in load_yaml(ALERTS_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == name
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{name} is never shown firing"
    assert any(not case.get("exp_alerts") for case in cases), f"{name} is never shown quiet"


@pytest.mark.parametrize("name", sorted(WATCHES))
def test_the_unit_tests_catch_an_alert_that_never_fires(name: str, tmp_path: Path) -> None:
    """Not vacuous: with one alert's expression made dead, `promtool test rules` fails on it."""
    document = load_yaml(ALERTS)
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                rule["expr"] = "vector(1) == 0"
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with (tmp_path / ALERTS.name).open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    result = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    failed = re.findall(r"alertname: (\w+)", result.stdout + result.stderr)
    assert failed and set(failed) == {name}, result.stdout + result.stderr


def test_the_config_scrapes_both_pipelines_on_their_default_ports() -> None:
    config = load_yaml(CONFIG)
    assert config["rule_files"] == [ALERTS.name]
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    ports = {
        "kraken-trades": ("trades", TRADES),
        "kraken-candles": ("candles", CANDLES),
    }
    for job, (service, variables) in ports.items():
        default = next(v.default for v in variables if v.name == "metrics_port")
        assert targets[job] == [f"{service}:{default}"], targets
    pipeline_down = alert_rules()["KrakenPipelineDown"]["expr"]
    assert all(job in pipeline_down for job in ports), pipeline_down
