"""Shared fixtures: a real Kafka-compatible broker for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sources.broker import EmbeddedBroker
from tests.kafka import free_port


def _external_broker() -> str | None:
    return os.environ.get("KAFKA_BROKER_ADDRESS") or os.environ.get("Quix__Broker__Address")


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The broker address: an external one from the environment, else Tansu on a free port."""
    external = _external_broker()
    if external:
        yield external
        return
    with EmbeddedBroker(port=free_port()) as tansu:
        yield tansu.address
