"""deploy/prometheus, checked and unit-tested by promtool (a process: the component tier).

`promtool` ships with Prometheus (Debian/Ubuntu: `apt-get install prometheus`; macOS:
`brew install prometheus`); `PROMTOOL` may name it. Without it these tests fail rather than
skip: CI installs it, and a silently skipped alert test proves nothing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.prometheus import ALERTS, ALERTS_TEST, CONFIG, WATCHES, promtool, rules
from tests.support.repo import load_yaml


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
