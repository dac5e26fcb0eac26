"""The Quix descriptors (quix.yaml, each app.yaml) as the platform reads them: a deployment's
variables are its application's, with the deployment's overrides (descriptor 2.0)."""

from __future__ import annotations

from typing import Any

from quixstreams.models import TopicConfig

from tests.support.repo import ROOT, load_yaml

QUIX_YAML = ROOT / "quix.yaml"
MINUTE_MS = 60_000


def app_yaml(application: str) -> dict[str, Any]:
    """The app.yaml of an application folder, e.g. `pipelines/trades`."""
    return load_yaml(ROOT / application / "app.yaml")


def deployments() -> dict[str, dict[str, Any]]:
    """quix.yaml's deployments by name."""
    return {d["name"]: d for d in load_yaml(QUIX_YAML)["deployments"]}


def effective_variables(deployment: dict[str, Any]) -> dict[str, str]:
    """name -> value the deployment runs with: app.yaml's defaults, then its overrides
    (matched by name case-insensitively, as Quix does)."""
    declared = app_yaml(deployment["application"])["variables"]
    values = {v["name"]: str(v["defaultValue"]) for v in declared}
    by_lower = {name.lower(): name for name in values}
    for override in deployment.get("variables") or []:
        name = by_lower[override["name"].lower()]  # KeyError: app.yaml does not declare it
        if "value" in override:
            values[name] = str(override["value"])
    return values


def declared_topics() -> dict[str, TopicConfig]:
    """quix.yaml's topics as creation settings (retention in ms; no replication factor)."""
    topics = {}
    for topic in load_yaml(QUIX_YAML)["topics"]:
        config = topic.get("configuration") or {}
        minutes = int(config.get("retentionInMinutes", -1))
        topics[topic["name"]] = TopicConfig(
            num_partitions=config.get("partitions"),
            replication_factor=None,
            extra_config={
                "retention.ms": str(minutes * MINUTE_MS if minutes >= 0 else -1),
                "retention.bytes": str(config.get("retentionInBytes", -1)),
            },
        )
    return topics
