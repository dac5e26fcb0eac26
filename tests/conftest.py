"""Shared fixtures: a real Kafka-compatible broker for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sources.broker import EmbeddedBroker
from tests.kafka import filters_aborted_transactions, free_port


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


@pytest.fixture(scope="session")
def transactional_broker(broker: str) -> str:
    """The broker, if its read_committed consumers skip aborted records (Tansu's do not)."""
    if not filters_aborted_transactions(broker):
        pytest.skip(
            f"the broker at {broker} returns aborted transactional records to read_committed "
            "consumers (Tansu does): exactly-once across a crash cannot be observed on it; "
            "run with KAFKA_BROKER_ADDRESS set to a Redpanda or Kafka broker"
        )
    return broker
