"""The component tier's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sim_client import close_clients


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close the test's client sockets to the simulator (tests.support.sim_client.connect)."""
    yield
    close_clients()
