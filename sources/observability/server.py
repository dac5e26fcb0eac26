"""`/metrics`, `/healthz` and `/readyz` on one port, served by the main process.

Standard library HTTP (a `ThreadingHTTPServer` in a daemon thread) and prometheus_client's
own exposition: every scrape merges the files of all processes in the multiprocess
directory (`MultiProcessCollector`), so the source's process and the dataframe's show in
one answer.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .health import Health, read_source_state
from .multiproc import reap_dead_processes

__all__ = ["MetricsServer"]

logger = logging.getLogger(__name__)


class MetricsServer:
    """The HTTP endpoints of one pipeline.

    :param port: the TCP port; 0 picks a free one (see `port` after `start`).
    :param health: answers /healthz and /readyz.
    :param directory: the multiprocess directory; None: serve `registry` as it is.
    :param registry: the registry to serve without a directory (tests).
    :param before_scrape: called before each scrape (e.g. to flush buffered counts).
    :param host: the address to listen on (`metrics_host`): "" or 0.0.0.0 every IPv4
        interface, :: every interface, 127.0.0.1 this machine only, or a host name.
    """

    def __init__(
        self,
        port: int,
        health: Health,
        *,
        directory: Path | None = None,
        registry: CollectorRegistry | None = None,
        before_scrape: Sequence[Callable[[], None]] = (),
        host: str = "",
    ) -> None:
        if directory is None and registry is None:
            raise ValueError("give the multiprocess directory or a registry")
        self.health = health
        self.directory = directory
        if directory is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, str(directory))
        self.registry = registry
        self.before_scrape = tuple(before_scrape)
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._address[1]

    def start(self) -> MetricsServer:
        """Bind the port and serve in a daemon thread.

        :raises OSError: when the port cannot be bound (e.g. already in use).
        """
        server_class = _IPv6Server if ":" in self._address[0] else ThreadingHTTPServer
        server = server_class(self._address, _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metrics-server", daemon=True
        )
        self._thread.start()
        host = self._address[0]
        where = f"[{host}]" if ":" in host else host
        logger.info("Metrics on %s:%d/metrics (health: /healthz, /readyz)", where, self.port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # --- the answers ------------------------------------------------------------------

    def metrics(self) -> bytes:
        """The exposition of every process's metrics."""
        self._prepare()
        self.health.broker_up()  # sets the broker gauge
        return generate_latest(self.registry)

    def healthz(self) -> tuple[int, str]:
        alive, why = self.health.liveness(self._source_state())
        return (200 if alive else 503), why

    def readyz(self) -> tuple[int, str]:
        broker_up = self.health.broker_up()
        ready, why = self.health.readiness(self._source_state(), broker_up)
        return (200 if ready else 503), why

    def _prepare(self) -> None:
        if self.directory is not None:
            reap_dead_processes(self.directory)
        for hook in self.before_scrape:
            hook()

    def _source_state(self):
        if not self.health.source:
            return None
        if self.directory is not None:
            reap_dead_processes(self.directory)
        assert self.registry is not None
        return read_source_state(self.registry.collect())


class _IPv6Server(ThreadingHTTPServer):
    """For an IPv6 `metrics_host` (`::` also takes IPv4 where the system maps it)."""

    address_family = socket.AF_INET6


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/metrics":
                    self._answer(200, server.metrics(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    status, text = server.healthz()
                    self._answer(status, (text + "\n").encode(), "text/plain; charset=utf-8")
                elif path == "/readyz":
                    status, text = server.readyz()
                    self._answer(status, (text + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._answer(404, b"not found: try /metrics, /healthz, /readyz\n", "text/plain")
            except Exception:
                logger.exception("Error answering %s", path)
                self._answer(500, b"internal error\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("metrics server: " + format, *args)

    return Handler
