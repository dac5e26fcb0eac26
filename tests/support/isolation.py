"""The unit tier's promise as code: while `no_process_no_socket()` is entered, the thread that
entered it cannot start a process or use a socket (tests/unit/conftest.py enters it around
every unit test; a test that needs either belongs in tests/component).

An audit hook refuses the audited ways (`subprocess`, `os.system`, `os.fork`, socket
connect, bind and send), and `_posixsubprocess.fork_exec`, how multiprocessing starts a
process without an audit event, is replaced while entered. Sockets opened in C below Python
(librdkafka's, under confluent_kafka) raise no audit event and are not seen.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    import _posixsubprocess
except ImportError:  # not a POSIX system: nothing to replace
    _posixsubprocess = None

# audit events (https://docs.python.org/3/library/audit_events.html) -> what they do
REFUSED = {
    "subprocess.Popen": "starts a process",
    "os.system": "starts a process",
    "os.exec": "starts a process",
    "os.fork": "starts a process",
    "os.forkpty": "starts a process",
    "os.posix_spawn": "starts a process",
    "os.spawn": "starts a process",
    "os.startfile": "starts a process",
    "socket.connect": "uses a socket",
    "socket.bind": "uses a socket",
    "socket.sendto": "uses a socket",
    "socket.sendmsg": "uses a socket",
}


class UnitTierViolation(RuntimeError):
    """A unit test started a process or used a socket."""


class _Guarded:
    thread: int | None = None  # the thread refused processes and sockets now, if any
    hooked = False  # an audit hook cannot be removed: one for the whole session


def _violation(what: str, detail: str) -> UnitTierViolation:
    return UnitTierViolation(
        f"a unit test {what} ({detail[:200]}): unit tests start no process and open no "
        "socket; move this test to tests/component"
    )


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _Guarded.thread is None or threading.get_ident() != _Guarded.thread:
        return
    what = REFUSED.get(event)
    if what is not None:
        raise _violation(what, f"{event} {args[:2]!r}")


def _refuse_fork_exec(*args: object, **kwargs: object) -> int:
    raise _violation("starts a process", "_posixsubprocess.fork_exec")


@contextmanager
def no_process_no_socket() -> Iterator[None]:
    """Refuse, in this thread, every way to start a process or use a socket until exit."""
    if not _Guarded.hooked:
        sys.addaudithook(_audit)
        _Guarded.hooked = True
    fork_exec = getattr(_posixsubprocess, "fork_exec", None)
    if fork_exec is not None:
        _posixsubprocess.fork_exec = _refuse_fork_exec
    _Guarded.thread = threading.get_ident()
    try:
        yield
    finally:
        _Guarded.thread = None
        if fork_exec is not None:
            _posixsubprocess.fork_exec = fork_exec
