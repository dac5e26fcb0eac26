"""One list of settings (`sources/app/variables.py`): app.yaml, quix.yaml, the settings code
and the configuration tables (docs/configuration.md) all agree with it.

quix.yaml is a 2.0 descriptor: a deployment inherits its application's variables from
app.yaml and lists only its overrides, so what a deployment runs with is app.yaml's defaults
and its overrides (`effective_variables`).
"""

from __future__ import annotations

import re

import pytest

from sources.app.settings import TradesSettings
from sources.app.variables import AUDIT, BROKER_SECURITY, CANDLES, TRADES, Variable, markdown_table
from sources.audit.settings import AuditSettings
from sources.candles.settings import CandlesSettings
from tests.support.descriptors import ROOT, deployments, effective_variables, load_yaml

APPS = {"trades": TRADES, "candles": CANDLES, "audit": AUDIT}
SETTINGS = {"trades": TradesSettings, "candles": CandlesSettings, "audit": AuditSettings}
# where each app's variables table is (the audit has its own page)
TABLES = {"trades": "configuration.md", "candles": "configuration.md", "audit": "audit.md"}
# The broker_* settings are valid together only (SASL needs a user and a password, a TLS file
# needs a TLS protocol): each is changed from this valid whole to another valid one.
SECURITY_BASE = {
    "broker_security_protocol": "sasl_ssl",
    "broker_sasl_mechanism": "PLAIN",
    "broker_sasl_username": "user",
    "broker_sasl_password": "secret",
    "broker_ssl_ca_location": str(ROOT / "pyproject.toml"),
    "broker_ssl_certificate_location": str(ROOT / "pyproject.toml"),
    "broker_ssl_key_location": str(ROOT / "pyproject.toml"),
}
SECURITY_VALUES = {
    "broker_security_protocol": "ssl",  # no SASL then: checked below without the SASL ones
    "broker_sasl_mechanism": "SCRAM-SHA-512",
    "broker_sasl_username": "other-user",
    "broker_sasl_password": "other-secret",
    "broker_ssl_ca_location": str(ROOT / "README.md"),
    "broker_ssl_certificate_location": str(ROOT / "README.md"),
    "broker_ssl_key_location": str(ROOT / "Makefile"),
}
SECURITY_NAMES = {v.name for v in BROKER_SECURITY}
NEEDS = {"backfill_only": {"backfill_since": "2d"}}  # what a variable is valid only with
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
        "max_held_mb": "64",
        "max_ws_message_mb": "8",
        "max_rest_body_mb": "32",
        "backfill_deadline": "6h",  # needs backfill_only; checked below with it
        "partitions": "6",
        "retention": "30d",
        "decimal_strings": "true",
        "replication": "3",
        "processing_guarantee": "exactly-once",
        "metrics_port": "0",
        "metrics_host": "127.0.0.1",
        "broker_timeout": "5",
        "stats_interval": "5",
        "transforms": "mod:func",
        "min_notional": "5",
        "Quix__Consumer_Group": "other-group",
        "loglevel": "DEBUG",
        "Quix__Broker__Address": "127.0.0.1:1",
        "embedded_broker": "never",
        **SECURITY_VALUES,
    },
    "candles": {
        "input": "other-in",
        "output": "other-out",
        "candle_seconds": "5",
        "grace_seconds": "1",
        "metrics_port": "0",
        "metrics_host": "127.0.0.1",
        "replication": "2",
        "stats_interval": "5",
        "broker_timeout": "5",
        "Quix__Consumer_Group": "other-group",
        "loglevel": "DEBUG",
        "Quix__Broker__Address": "127.0.0.1:1",
        **SECURITY_VALUES,
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


def cloud(variables: tuple[Variable, ...]) -> list[Variable]:
    return [v for v in variables if v.cloud]


@pytest.mark.parametrize("app", APPS)
def test_app_yaml_declares_every_cloud_variable_with_its_default(app: str) -> None:
    declared = load_yaml(ROOT / "pipelines" / app / "app.yaml")["variables"]
    expected = [(v.name, v.input_type, v.default) for v in cloud(APPS[app])]
    assert [(d["name"], d["inputType"], str(d["defaultValue"])) for d in declared] == expected


@pytest.mark.parametrize("app", APPS)
def test_app_yaml_offers_the_options_the_settings_accept(app: str) -> None:
    declared = {d["name"]: d for d in load_yaml(ROOT / "pipelines" / app / "app.yaml")["variables"]}
    for variable in cloud(APPS[app]):
        options = [str(o["value"]) for o in declared[variable.name].get("options", [])]
        assert options == list(variable.options), variable.name
        assert not options or variable.default in options, variable.name
        for option in options:  # every option the UI offers is a valid setting
            SETTINGS[app].from_env({**NEEDS.get(variable.name, {}), variable.name: option})


@pytest.mark.parametrize("app", APPS)
def test_quix_yaml_deployments_inherit_and_override_only_declared_variables(app: str) -> None:
    mine = [d for d in deployments().values() if d["application"] == f"pipelines/{app}"]
    assert mine
    names = {v.name.lower() for v in cloud(APPS[app])}
    for deployment in mine:
        for override in deployment.get("variables") or []:
            assert override["name"].lower() in names, (deployment["name"], override["name"])
            assert set(override) == {"name", "value"}, "an override repeats what app.yaml says"
        values = effective_variables(deployment)
        assert set(values) == {v.name for v in cloud(APPS[app])}
        SETTINGS[app].from_env(values)  # what the deployment runs with is a valid configuration
    main = deployments()[app]
    assert "variables" not in main, f"{app} runs with app.yaml's defaults: nothing to override"
    assert effective_variables(main) == {v.name: v.default for v in cloud(APPS[app])}


def test_the_dataset_deployment_is_a_job_apart_from_the_live_stream() -> None:
    live = effective_variables(deployments()["trades"])
    dataset = effective_variables(deployments()["trades-dataset"])
    assert deployments()["trades-dataset"]["deploymentType"] == "Job"
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
def test_the_configuration_table_lists_every_variable_with_its_default(app: str) -> None:
    readme = (ROOT / "docs" / TABLES[app]).read_text()
    marker = f"<!-- variables: {app} -->"
    assert marker in readme
    table = readme.split(marker, 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `([^`]+)` \| (?:`([^`]*)`|\*\(empty\)\*) \|", table, re.MULTILINE)
    assert rows == [(v.name, v.default) for v in APPS[app]]


def test_the_readme_s_excerpt_names_real_settings_with_their_defaults() -> None:
    """The README shows the most used settings; each is in the list, with its default."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- variables excerpt: trades -->\n", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (?:`([^`]*)`|\*\(empty\)\*) \|", table, re.MULTILINE)
    defaults = {v.name: v.default for v in APPS["trades"]}
    assert len(rows) == len(table.splitlines()) - 2  # every row read
    assert [(name, defaults.get(name)) for name, _ in rows] == rows


@pytest.mark.parametrize("app", APPS)
def test_the_configuration_table_is_the_one_the_list_prints(app: str) -> None:
    """Ranges included: `python -m sources.app.variables --markdown <app>` writes it."""
    readme = (ROOT / "docs" / TABLES[app]).read_text()
    table = readme.split(f"<!-- variables: {app} -->\n\n", 1)[1].split("\n\n", 1)[0]
    assert table.strip() == markdown_table(APPS[app])


@pytest.mark.parametrize("app", APPS)
def test_the_settings_code_reads_every_variable_and_its_defaults_agree(app: str) -> None:
    settings = SETTINGS[app]
    assert settings.from_env({}) == settings()
    assert settings.from_env({v.name: v.default for v in APPS[app]}) == settings()
    assert set(OTHER_VALUES[app]) == {v.name for v in APPS[app]}
    for name, value in OTHER_VALUES[app].items():
        if name in SECURITY_NAMES:
            other = {**SECURITY_BASE, name: value}
            if name == "broker_security_protocol":  # ssl: without the SASL settings
                other = {k: v for k, v in other.items() if "sasl" not in k}
            assert settings.from_env(other) != settings.from_env(SECURITY_BASE), name
            continue
        if not next(v for v in APPS[app] if v.name == name).setting:
            continue  # read by user code only (test_transforms_example.py)
        env = {name: value}
        if name == "backfill_only":
            env = {"backfill_since": "2d", name: "true"}
        if name == "backfill_deadline":
            env = {"backfill_since": "2d", "backfill_only": "true", name: value}
        if name == "shard":
            env = {"shards": "2", name: "1"}
        if name == "input":
            env["output"] = "other-out"
        changed = settings.from_env(env)
        assert changed != settings.from_env({k: v for k, v in env.items() if k != name}), name


def test_a_deprecated_setting_is_accepted_with_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sources.app.variables import DEPRECATED

    for name in DEPRECATED:
        assert name not in {v.name for v in TRADES}  # not offered any more
        with caplog.at_level("WARNING"):
            assert TradesSettings.from_env({name: "5"}) == TradesSettings()
        assert f"Setting {name} is deprecated" in caplog.text
