"""compose.yaml against the official Compose Specification JSON Schema, and what it promises.

The schema is the compose-spec project's `compose-spec.json`, as vendored by the
`check-jsonschema` package (test extra): nothing is downloaded at test time. `jsonschema`
validates with the draft the schema declares. The `topics` service must create quix.yaml's
topics with quix.yaml's settings before the apps start.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.protocols import Validator
from quixstreams.models import TopicConfig
from ruamel.yaml import YAML

from tests.support.descriptors import declared_topics
from tests.support.repo import ROOT, load_yaml

COMPOSE = ROOT / "compose.yaml"
SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
SCHEMA_FILE = "compose-spec.json"
PIPELINES = ("trades", "candles")
# A release tag: v1.2.3 or 1.2.3, optionally with a suffix (-alpine, ...); never `latest`.
VERSION_TAG = re.compile(r":v?\d+\.\d+\.\d+(?:[-.][\w.]+)?$")


@cache
def compose_validator() -> Validator:
    """A validator for the compose-spec schema shipped by check-jsonschema."""
    schema = json.loads(files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(document: Any) -> list[str]:
    """Every schema violation in `document`, as `path: message` lines."""
    errors = compose_validator().iter_errors(document)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))
    ]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def test_the_schema_is_the_compose_specification() -> None:
    schema = compose_validator().schema
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "networks"} <= set(schema["properties"])


def test_compose_file_is_valid(compose: dict[str, Any]) -> None:
    errors = schema_errors(compose)
    assert not errors, "compose.yaml breaks the Compose Specification:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda c: c["services"]["redpanda"].update(imagee="redpanda"), "services/redpanda"),
        (lambda c: c["services"]["trades"]["depends_on"]["redpanda"].update(condition="up"), ""),
        (lambda c: c["services"]["redpanda"]["healthcheck"].update(every="5s"), "healthcheck"),
        (lambda c: c["services"]["candles"]["build"].update(arguments={}), "candles/build"),
        (lambda c: c.update(volumes=["redpanda-data"]), "volumes"),
    ],
    ids=["misspelt-key", "unknown-condition", "healthcheck-key", "build-key", "volumes-list"],
)
def test_a_broken_copy_is_rejected(breakage, where: str, tmp_path: Path) -> None:
    """The check is not vacuous: a copy broken in one place fails, naming that place."""
    broken = load_yaml(COMPOSE)
    breakage(broken)
    copy = tmp_path / "compose.yaml"
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with copy.open("w", encoding="utf-8") as out:
        yaml.dump(broken, out)
    errors = schema_errors(load_yaml(copy))
    assert errors, "a broken compose file passed the schema"
    assert any(where in error for error in errors), errors


def test_images_are_pinned_to_a_release(compose: dict[str, Any]) -> None:
    images = {name: svc["image"] for name, svc in compose["services"].items() if "image" in svc}
    assert {"redpanda", "console"} <= set(images)
    for name, image in images.items():
        assert VERSION_TAG.search(image), f"{name}: {image!r} is not pinned to a version tag"
        assert not image.endswith(":latest"), f"{name}: {image!r}"


def test_redpanda_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    declared = compose.get("volumes") or {}
    mounts = [m.split(":") for m in compose["services"]["redpanda"]["volumes"]]
    data = [source for source, target, *_ in mounts if target == "/var/lib/redpanda/data"]
    assert data, "no volume on /var/lib/redpanda/data"
    assert data[0] in declared, f"{data[0]!r} is not a named volume of the top-level `volumes`"


def test_redpanda_exposes_kafka_and_admin_and_has_a_healthcheck(compose: dict[str, Any]) -> None:
    redpanda = compose["services"]["redpanda"]
    container_ports = {str(p).rsplit(":", 1)[-1] for p in redpanda["ports"]}
    assert {"19092", "9644"} <= container_ports
    assert redpanda["healthcheck"]["test"]


@pytest.mark.parametrize("name", [*PIPELINES, "console"])
def test_clients_wait_for_a_healthy_redpanda(compose: dict[str, Any], name: str) -> None:
    depends = compose["services"][name]["depends_on"]
    assert depends["redpanda"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", PIPELINES)
def test_pipelines_build_from_their_quix_dockerfile(compose: dict[str, Any], name: str) -> None:
    build = compose["services"][name]["build"]
    app_path = f"pipelines/{name}"
    assert build["args"]["MAINAPPPATH"] == app_path
    assert build["dockerfile"] == f"{app_path}/dockerfile"
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert (ROOT / build["context"] / app_path / "requirements.txt").is_file()


# ---------------------------------------------------------------------------------------
# The `topics` service: quix.yaml's topics, created before the apps with the same settings


def rpk_creations(service: dict[str, Any]) -> dict[str, TopicConfig]:
    """The topics the service's script creates (`rpk topic create NAME ... -p N -c k=v`), as
    creation settings; a replication factor only if one is asked for (`-r`/`--replicas`)."""
    script = "\n".join(service["command"])
    created = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if words[:3] != ["rpk", "topic", "create"]:
            assert not words or words[0] != "rpk", f"an rpk command that creates nothing: {line}"
            continue
        names, partitions, replication, config = [], None, None, {}
        rest = iter(words[3:])
        for word in rest:
            if word in ("-p", "--partitions"):
                partitions = int(next(rest))
            elif word in ("-r", "--replicas"):
                replication = int(next(rest))
            elif word in ("-c", "--topic-config"):
                key, _, value = next(rest).partition("=")
                config[key] = value
            elif word in ("-X", "--config-opt"):
                next(rest)
            elif word.startswith("-"):
                assert word == "--if-not-exists", f"unexpected rpk flag {word}"
            else:
                names.append(word)
        for name in names:
            assert name not in created, f"{name} created twice"
            created[name] = TopicConfig(partitions, replication, config)
    return created


def test_the_topics_service_creates_every_topic_of_quix_yaml_with_its_settings(
    compose: dict[str, Any],
) -> None:
    topics = compose["services"]["topics"]
    assert topics["image"] == compose["services"]["redpanda"]["image"]  # its rpk
    assert topics["depends_on"]["redpanda"]["condition"] == "service_healthy"
    script = "\n".join(topics["command"])
    assert "--if-not-exists" in script  # a second `up` finds them: not an error
    assert rpk_creations(topics) == declared_topics()  # no replication factor: the cluster's


@pytest.mark.parametrize("name", PIPELINES)
def test_every_app_starts_once_the_topics_exist(compose: dict[str, Any], name: str) -> None:
    depends = compose["services"][name]["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"


def test_candles_starts_after_a_healthy_trades_pipeline(compose: dict[str, Any]) -> None:
    assert compose["services"]["candles"]["depends_on"]["trades"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", PIPELINES)
def test_the_apps_healthcheck_is_healthz_not_readyz(compose: dict[str, Any], name: str) -> None:
    probe = " ".join(compose["services"][name]["healthcheck"]["test"])
    port = compose["services"][name]["environment"]["metrics_port"]
    assert f":{port}/healthz" in probe and "readyz" not in probe


def test_every_port_is_published_on_the_loopback_interface_only(compose: dict[str, Any]) -> None:
    """A laptop running the stack exposes none of it (metrics, broker, consoles) to its
    network; containers reach each other on compose's own network."""
    published = [
        (name, port)
        for name, service in compose["services"].items()
        for port in service.get("ports", [])
    ]
    assert published
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
