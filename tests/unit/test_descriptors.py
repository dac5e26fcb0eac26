"""quix.yaml and the app.yaml files against the JSON Schemas written from Quix's reference
(`schemas/quix/`), and what quix.yaml promises: the topics the code creates, with the code's
settings; the metrics port reachable on every Service; persistent state on Services only."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipelines.candles import main as candles_main
from pipelines.trades import main as trades_main
from sources.app.settings import TradesSettings
from sources.audit.settings import AuditSettings
from sources.candles.settings import CandlesSettings
from tests.support.descriptors import (
    QUIX_YAML,
    ROOT,
    declared_topics,
    deployments,
    effective_variables,
    load_yaml,
)

SCHEMAS = ROOT / "schemas" / "quix"
APP_YAMLS = tuple(p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob("pipelines/*/app.yaml")))
CODE = {
    "pipelines/trades": (TradesSettings, trades_main.created_topics),
    "pipelines/candles": (CandlesSettings, candles_main.created_topics),
    "pipelines/audit": (AuditSettings, lambda settings: {}),  # reads only, creates nothing
}


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(name: str, document: Any) -> list[str]:
    """Every violation, as `path: message`."""
    found = validator(name).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]


@pytest.mark.parametrize("name", ["pipeline", "app"])
def test_each_schema_is_strict_and_cites_quix_reference(name: str) -> None:
    schema = validator(name).schema
    assert "quix.io/docs/quix-cli/yaml-reference/" in schema["description"]
    objects = [schema, *schema["$defs"].values()]
    for definition in objects:
        assert definition.get("additionalProperties") is False, definition.get("description")


def test_quix_yaml_is_a_valid_2_0_descriptor() -> None:
    descriptor = load_yaml(QUIX_YAML)
    assert not errors("pipeline", descriptor), errors("pipeline", descriptor)
    assert float(descriptor["metadata"]["version"]) == 2.0


@pytest.mark.parametrize("path", APP_YAMLS)
def test_app_yaml_is_a_valid_application_descriptor(path: str) -> None:
    document = load_yaml(ROOT / path)
    assert not errors("app", document), errors("app", document)


def first(items: list[dict], **match: str) -> dict:
    return next(i for i in items if all(i.get(k) == v for k, v in match.items()))


QUIX_BREAKAGES: dict[str, tuple[Callable[[dict], None], str]] = {
    "unknown-key": (lambda d: d["deployments"][0].update(replica=2), "deployments/0"),
    "bad-input-type": (
        lambda d: first(d["deployments"], name="trades-dataset")["variables"][0].update(
            inputType="Text"
        ),
        "deployments/1/variables/0/inputType",
    ),
    "missing-required": (lambda d: d["deployments"][0].pop("deploymentType"), "deployments/0"),
    "bad-deployment-type": (
        lambda d: d["deployments"][0].update(deploymentType="Daemon"),
        "deployments/0/deploymentType",
    ),
    "bad-status": (
        lambda d: d["deployments"][2].update(desiredStatus="Paused"),
        "deployments/2/desiredStatus",
    ),
    "flat-resources": (
        lambda d: d["deployments"][0]["resources"].update(cpu=500),
        "deployments/0/resources",
    ),
}
APP_BREAKAGES: dict[str, tuple[Callable[[dict], None], str]] = {
    "unknown-key": (lambda d: d["variables"][0].update(default="x"), "variables/0"),
    "bad-input-type": (
        lambda d: d["variables"][0].update(inputType="Choice"),
        "variables/0/inputType",
    ),
    "missing-required": (lambda d: d["variables"][1].pop("inputType"), "variables/1"),
    "options-without-options": (
        lambda d: first(d["variables"], name="loglevel").pop("options"),
        "variables/",
    ),
}


@pytest.mark.parametrize("breakage", QUIX_BREAKAGES)
def test_a_broken_copy_of_quix_yaml_is_rejected_where_it_is_broken(breakage: str) -> None:
    broken = copy.deepcopy(load_yaml(QUIX_YAML))
    change, where = QUIX_BREAKAGES[breakage]
    change(broken)
    found = errors("pipeline", broken)
    assert found, "a broken quix.yaml passed the schema"
    assert any(e.startswith(where) for e in found), found


@pytest.mark.parametrize("path", APP_YAMLS)
@pytest.mark.parametrize("breakage", APP_BREAKAGES)
def test_a_broken_copy_of_app_yaml_is_rejected_where_it_is_broken(path: str, breakage: str) -> None:
    broken = copy.deepcopy(load_yaml(ROOT / path))
    change, where = APP_BREAKAGES[breakage]
    change(broken)
    found = errors("app", broken)
    assert found, f"a broken {path} passed the schema"
    assert any(e.startswith(where) for e in found), found


def test_quix_yaml_declares_every_topic_the_code_creates_with_the_code_settings() -> None:
    """The platform creates quix.yaml's topics before the deployments: with the same settings
    as the code would (partitions, retention), and none the code does not write."""
    created = {}
    for deployment in deployments().values():
        settings_class, created_topics = CODE[deployment["application"]]
        settings = settings_class.from_env(effective_variables(deployment))
        for name, config in created_topics(settings).items():
            assert created.setdefault(name, config) == config, f"{name}: two settings"
    assert declared_topics() == created


def test_every_service_exposes_its_metrics_port_and_keeps_persistent_state() -> None:
    services = [d for d in deployments().values() if d["deploymentType"] == "Service"]
    assert services
    for service in services:
        port = int(effective_variables(service)["metrics_port"])
        targets = [p.get("targetPort", p["port"]) for p in service["network"]["ports"]]
        assert port in targets, service["name"]
        assert service["network"]["serviceName"] == service["name"]
        assert service["state"]["enabled"] is True, service["name"]


def test_jobs_declare_no_persistent_state_nor_network() -> None:
    """Quix offers persistent state and a network service to Services only."""
    jobs = [d for d in deployments().values() if d["deploymentType"] == "Job"]
    assert [j["name"] for j in jobs] == ["trades-dataset", "audit"]
    for job in jobs:
        assert "state" not in job and "network" not in job, job["name"]
    assert deployments()["audit"]["desiredStatus"] == "Stopped"  # runs when a user starts it
