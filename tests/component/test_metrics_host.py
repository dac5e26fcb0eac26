"""`metrics_host`: the metrics server listens where it is told, on every interface by default
(a container's case) or on this machine only."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from sources.app.settings import TradesSettings
from sources.candles.settings import CandlesSettings
from sources.observability.health import Health
from sources.observability.server import MetricsServer


def serve(host: str) -> MetricsServer:
    return MetricsServer(0, Health(source=False), registry=CollectorRegistry(), host=host).start()


def answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def other_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_both_pipelines_listen_on_every_interface_by_default() -> None:
    assert TradesSettings().metrics_host == CandlesSettings().metrics_host == "0.0.0.0"
    server = serve(TradesSettings().metrics_host)
    try:
        assert server._server is not None and server._server.server_address[0] == "0.0.0.0"
        assert answers("127.0.0.1", server.port)
    finally:
        server.stop()


def test_loopback_keeps_the_endpoints_on_this_machine() -> None:
    server = serve("127.0.0.1")
    try:
        assert answers("127.0.0.1", server.port)
        other = other_address()
        if other is not None:
            assert not answers(other, server.port)
    finally:
        server.stop()


def test_an_ipv6_address_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = serve("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert answers("[::1]", server.port)
    finally:
        server.stop()
