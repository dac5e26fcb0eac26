"""Shared fixtures (a real Kafka-compatible broker for the whole session, the Kraken simulator
and its market) and the tiers.

Tiers by folder: `tests/unit` (pure logic, no socket: seconds), `tests/component` (real
sockets, the simulator, the broker; no pipeline process), `tests/e2e` (pipeline processes
against the simulator and the broker). `pytest tests/unit`, or `-m unit` / `-m "not e2e"`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from simulator import KrakenSimulator, Market
from sources.app.startup import quiet_third_party_warnings
from sources.broker import EmbeddedBroker
from tests.support.examples import register_profiles
from tests.support.kafka import filters_aborted_transactions, free_port

quiet_third_party_warnings()  # before any test module imports Quix Streams
register_profiles()  # Hypothesis: thorough by default, quick in the fast tiers (Makefile)

TIERS = ("unit", "component", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the tier of its folder."""
    for item in items:
        parts = item.path.parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
                break


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


@pytest.fixture
def market(request: pytest.FixtureRequest) -> Market:
    """A fresh simulated market, as the test's `market` marker (its own, else its module's)
    describes it: `pytest.mark.market(pairs, seed=..., seed_history={"count_per_pair": ...,
    "span_seconds": ...})`; the other keywords go to `Market`, `seed_history` (optional) to
    `Market.seed_history`."""
    marker = request.node.get_closest_marker("market")
    if marker is None:
        pytest.fail("the market fixture needs a marker: pytest.mark.market(pairs, seed=...)")
    options = dict(marker.kwargs)
    history = options.pop("seed_history", None)
    market = Market(*marker.args, **options)
    if history is not None:
        market.seed_history(**history)
    return market


@pytest.fixture
def kraken(request: pytest.FixtureRequest, market: Market) -> Iterator[KrakenSimulator]:
    """The Kraken simulator over `market`, started for the test; the `kraken` marker's keywords
    (`pytest.mark.kraken(rate=..., batch=...)`) are its options."""
    marker = request.node.get_closest_marker("kraken")
    with KrakenSimulator(market, **(marker.kwargs if marker else {})) as sim:
        yield sim
