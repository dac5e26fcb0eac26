"""A source whose process the application spawned during its group join waits at its
`start_gate`: it neither connects nor writes before the application has its partitions, and
a stop meanwhile ends it as a stop at any other time does (`sources.kraken.source`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sources.kraken.config import SourceConfig
from sources.kraken.source import KrakenTradesSource


class _Engine:
    """Records whether (and how) the source's loop ran."""

    def __init__(self) -> None:
        self.ran = threading.Event()
        self.running_when_run: bool | None = None

    def run_live(self, running: Callable[[], bool]) -> None:
        self.running_when_run = running()
        self.ran.set()


def _running_source(gate: threading.Event) -> tuple[KrakenTradesSource, _Engine, threading.Thread]:
    source = KrakenTradesSource(SourceConfig(pairs=("BTC/USD",)))
    engine = _Engine()
    source.engine = engine  # type: ignore[assignment]  # what setup() builds
    source.start_gate = gate
    source._running = True  # what Quix Streams' start() sets before run()
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    return source, engine, thread


def test_the_source_runs_only_once_its_gate_opens() -> None:
    gate = threading.Event()
    _, engine, thread = _running_source(gate)
    assert not engine.ran.wait(0.3)  # the group join is still going on
    gate.set()
    assert engine.ran.wait(5) and engine.running_when_run is True
    thread.join(5)
    assert not thread.is_alive()


def test_a_stop_at_the_closed_gate_ends_the_source() -> None:
    source, engine, thread = _running_source(threading.Event())
    assert not engine.ran.wait(0.2)
    source.stop()  # SIGTERM in the source's process: the application stops during its join
    thread.join(5)
    assert not thread.is_alive()
    assert engine.running_when_run is False  # the loop sees the stop at once and returns


def test_a_source_started_as_quix_streams_starts_it_does_not_wait() -> None:
    source = KrakenTradesSource(SourceConfig(pairs=("BTC/USD",)))
    assert source.start_gate is None
    engine = _Engine()
    source.engine = engine  # type: ignore[assignment]
    source._running = True
    source.run()
    assert engine.ran.is_set() and engine.running_when_run is True
