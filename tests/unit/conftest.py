"""The unit tier: pure logic, no process, no socket (tests/component has the tests that need
them). The promise is kept, not only stated: each unit test runs refused both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.isolation import no_process_no_socket


@pytest.fixture(autouse=True)
def _no_process_no_socket() -> Iterator[None]:
    """A unit test that starts a process or uses a socket fails, saying where it belongs."""
    with no_process_no_socket():
        yield
