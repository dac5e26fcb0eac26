"""deploy/prometheus: the alert rules and the scrape config say what issue 10 asks, read as data.

promtool checks and unit-tests the same files in tests/component/test_alerts.py.
"""

from __future__ import annotations

import re

import pytest

from sources.app.variables import CANDLES, TRADES
from tests.support.prometheus import ALERTS, ALERTS_TEST, CONFIG, WATCHES, alert_rules
from tests.support.repo import load_yaml

PER_PAIR = {
    "KrakenTradesGapUnrepaired",
    "KrakenTradesPairSilent",
    "KrakenTradesRepairStalled",
    "KrakenTradesPairBlocked",
}
SEVERITIES = {"critical", "warning"}


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
