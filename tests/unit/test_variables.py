"""One list of settings (`sources/app/variables.py`): app.yaml, quix.yaml, the settings code
and the README's configuration tables all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from sources.app.settings import TradesSettings
from sources.app.variables import AUDIT, CANDLES, TRADES, Variable
from sources.audit.settings import AuditSettings
from sources.candles.settings import CandlesSettings

ROOT = Path(__file__).resolve().parents[2]
APPS = {"trades": TRADES, "candles": CANDLES, "audit": AUDIT}
SETTINGS = {"trades": TradesSettings, "candles": CandlesSettings, "audit": AuditSettings}
STATEFUL = ("trades", "candles")  # the audit Job keeps no state
# where each app's variables table is (the audit has its own page)
TABLES = {"trades": "README.md", "candles": "README.md", "audit": "docs/audit.md"}
# a valid value other than the default, for every variable: each must change the settings
OTHER_VALUES = {
    "trades": {
        "output": "other",
        "gaps_output": "other-gaps",
        "pairs": "SOL/USD",
        "shards": "2",
        "shard": "1",  # needs shards > 1; checked below with it
        "kraken_ws_url": "ws://127.0.0.1:1/v2",
        "snapshot": "false",
        "heartbeat_timeout": "3",
        "max_pairs_per_connection": "7",
        "subscribe_batch": "5",
        "stale_after": "0",
        "kraken_rest_url": "http://127.0.0.1:1",
        "backfill_since": "2d",
        "backfill_only": "false",  # needs backfill_since; checked below with it
        "max_gap": "10",
        "max_held": "10",
        "repair_timeout": "5",
        "repair_attempts": "2",
        "partitions": "6",
        "retention": "30d",
        "decimal_strings": "true",
        "processing_guarantee": "exactly-once",
        "metrics_port": "0",
        "broker_timeout": "5",
        "stats_interval": "5",
        "transforms": "mod:func",
        "Quix__Consumer_Group": "other-group",
        "loglevel": "DEBUG",
        "Quix__Broker__Address": "127.0.0.1:1",
        "embedded_broker": "never",
    },
    "candles": {
        "input": "other-in",
        "output": "other-out",
        "candle_seconds": "5",
        "grace_seconds": "1",
        "metrics_port": "0",
        "stats_interval": "5",
        "broker_timeout": "5",
        "Quix__Consumer_Group": "other-group",
        "loglevel": "DEBUG",
        "Quix__Broker__Address": "127.0.0.1:1",
    },
    "audit": {
        "input": "other-trades",
        "gaps_input": "other-gaps",
        "pairs": "*/USD",
        "since": "1d",
        "until": "2020-01-01T00:00:00",
        "verify_rest": "true",
        "kraken_rest_url": "http://127.0.0.1:1",
        "rest_interval": "2",
        "idle_timeout": "5",
        "strict": "true",
        "json": "true",
        "max_findings": "10",
        "workers": "2",
        "loglevel": "DEBUG",
        "Quix__Broker__Address": "127.0.0.1:1",
    },
}


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def cloud(variables: tuple[Variable, ...]) -> list[Variable]:
    return [v for v in variables if v.cloud]


@pytest.mark.parametrize("app", APPS)
def test_app_yaml_declares_every_cloud_variable_with_its_default(app: str) -> None:
    declared = load_yaml(ROOT / "pipelines" / app / "app.yaml")["variables"]
    expected = [(v.name, v.input_type, v.default) for v in cloud(APPS[app])]
    assert [(d["name"], d["inputType"], str(d["defaultValue"])) for d in declared] == expected


@pytest.mark.parametrize("app", APPS)
def test_quix_yaml_deployments_list_every_variable_of_their_application(app: str) -> None:
    deployments = [
        d for d in load_yaml(ROOT / "quix.yaml")["deployments"] if d["application"].endswith(app)
    ]
    assert deployments
    expected = [(v.name, v.input_type) for v in cloud(APPS[app])]
    for deployment in deployments:
        listed = [(d["name"], d["inputType"]) for d in deployment["variables"]]
        assert listed == expected, deployment["name"]
        if app in STATEFUL:
            assert deployment["state"]["enabled"] is True, deployment["name"]
    main = next(d for d in deployments if d["name"] == app)
    values = {d["name"]: str(d["value"]) for d in main["variables"]}
    assert values == {v.name: v.default for v in cloud(APPS[app])}


def test_the_dataset_deployment_is_a_job_apart_from_the_live_stream() -> None:
    deployments = {d["name"]: d for d in load_yaml(ROOT / "quix.yaml")["deployments"]}
    live = {v["name"]: str(v["value"]) for v in deployments["trades"]["variables"]}
    dataset = {v["name"]: str(v["value"]) for v in deployments["trades-dataset"]["variables"]}
    assert deployments["trades-dataset"]["deploymentType"] == "Job"
    assert dataset["backfill_only"] == "true" and dataset["backfill_since"]
    for name in ("output", "gaps_output", "Quix__Consumer_Group"):  # own topics and state
        assert dataset[name] != live[name]
    topics = {t["name"] for t in load_yaml(ROOT / "quix.yaml")["topics"]}
    assert {
        live["output"],
        dataset["output"],
        live["gaps_output"],
        dataset["gaps_output"],
    } <= topics


@pytest.mark.parametrize("app", APPS)
def test_readme_table_lists_every_variable_with_its_default(app: str) -> None:
    readme = (ROOT / TABLES[app]).read_text()
    marker = f"<!-- variables: {app} -->"
    assert marker in readme
    table = readme.split(marker, 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `([^`]+)` \| (?:`([^`]*)`|\*\(empty\)\*) \|", table, re.MULTILINE)
    assert rows == [(v.name, v.default) for v in APPS[app]]


@pytest.mark.parametrize("app", APPS)
def test_the_settings_code_reads_every_variable_and_its_defaults_agree(app: str) -> None:
    settings = SETTINGS[app]
    assert settings.from_env({}) == settings()
    assert settings.from_env({v.name: v.default for v in APPS[app]}) == settings()
    assert set(OTHER_VALUES[app]) == {v.name for v in APPS[app]}
    for name, value in OTHER_VALUES[app].items():
        env = {name: value}
        if name == "backfill_only":
            env = {"backfill_since": "2d", name: "true"}
        if name == "shard":
            env = {"shards": "2", name: "1"}
        if name == "input":
            env["output"] = "other-out"
        changed = settings.from_env(env)
        assert changed != settings.from_env({k: v for k, v in env.items() if k != name}), name
