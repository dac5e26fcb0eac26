"""A hostile Kraken, end to end (issue 21): error strings with newlines and terminal escape
codes on both the WebSocket and REST, a WebSocket message and a REST answer over their size
limits. The app keeps running; the log has one escaped line per event (no forged line, no
escape code); every trade reaches the output once and in order, reconnects and repairs
included."""

from __future__ import annotations

import orjson
import pytest

from simulator import KrakenSimulator, Market
from simulator.ws_protocol import status
from tests.support.kafka import consume
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    last_ids,
    reached,
    trades_pipeline,
    wait_for_positions,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = pytest.mark.e2e

RATE = 40.0  # trades/s across both pairs: a 4 s outage is more than a snapshot covers
MIB = 2**20
# A log line of its own, in red, if it were logged as it comes.
FORGED = "\n[2024-01-01 00:00:00] [ERROR] forged line \x1b[31mred\x1b[0m"
ESCAPED = "\\n[2024-01-01 00:00:00] [ERROR] forged line \\x1b[31mred\\x1b[0m"


def lines_with(log: str, marker: str) -> list[str]:
    return [line for line in log.splitlines() if marker in line]


def test_hostile_text_and_oversized_input_cost_nothing_but_time(broker: str, tmp_path) -> None:
    market = Market(PAIRS, seed=21)
    market.seed_history(count_per_pair=60, span_seconds=60)
    limits = {"max_ws_message_mb": "1", "max_rest_body_mb": "1"}
    with (
        KrakenSimulator(market, rate=RATE, batch=2, heartbeat_interval=0.5) as kraken,
        trades_pipeline(broker, kraken, tmp_path, **limits) as pipeline,
    ):
        wait_for_subscriptions(pipeline, 1)
        wait_for_positions(pipeline)
        first = {p: i - 5 for p, i in wait_for_trades(market, 5).items()}
        connections = 1

        def repair_after(fault: str) -> None:
            """An outage the snapshot cannot cover: a REST repair meets the fault first."""
            nonlocal connections
            before = last_ids(market)
            kraken.outage(4)
            connections += 1
            wait_for_subscriptions(pipeline, connections, timeout=60)
            assert all(last_ids(market)[p] - before[p] > 60 for p in PAIRS)
            pipeline.wait_for_log(fault, timeout=60)

        # WebSocket: a status, a malformed frame, an error (a reconnect), a message over 1 MiB
        kraken.send_raw(status(7, system=f"maintenance ws-status{FORGED}"))
        pipeline.wait_for_log("ws-status")
        kraken.send_raw(f"not json ws-malformed{FORGED}")
        pipeline.wait_for_log("ws-malformed")
        kraken.send_raw(orjson.dumps({"error": f"Exceeded msg rate ws-error{FORGED}"}).decode())
        connections += 1
        wait_for_subscriptions(pipeline, connections, timeout=60)
        pad = "x" * (MIB + 1000) + FORGED
        huge = orjson.dumps({"channel": "trade", "type": "update", "data": [], "pad": pad})
        kraken.send_raw(huge.decode())
        connections += 1
        wait_for_subscriptions(pipeline, connections, timeout=60)
        # REST: an error string with a forged line, then an answer over the limit (2 MiB)
        kraken.rest_errors([f"EGeneral:Internal error rest-error{FORGED}"], 1)
        repair_after("rest-error")
        kraken.rest_oversized(2 * MIB, 1)
        repair_after("max_rest_body_mb")

        target = wait_for_trades(market, 10, timeout=60)
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, target), timeout=150)
        assert pipeline.stop() == 0
        log = pipeline.log
    ids = by_pair(records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] <= first[pair] and ids[pair][-1] >= target[pair]
    assert "will never be published" not in log
    # one line per event, at its level, the server's text escaped
    expected = {
        "rest-error": ("WARNING", "waits for Kraken REST: Kraken said EGeneral:Internal error"),
        "ws-status": ("WARNING", "Kraken system status is 'maintenance"),
        "ws-malformed": ("WARNING", "Malformed input #1 (not JSON"),
        "ws-error": ("WARNING", "Disconnected from Kraken (connection_id=7): Kraken error: "),
    }
    for marker, (level, words) in expected.items():
        [line] = lines_with(log, marker)
        assert words in line and ESCAPED in line, line
        assert 0 <= line.find(level) < line.index(words), line
    [too_long] = lines_with(log, "max_rest_body_mb")
    assert "WARNING" in too_long and "waits for Kraken REST: answer too long: a body" in too_long
    [too_big] = lines_with(log, "max_ws_message_mb")
    assert "ERROR" in too_big and f"over the limit of {MIB} (max_ws_message_mb)" in too_big
    assert "reconnecting in" in too_big
    assert "\x1b" not in log and "[ERROR] forged" not in log.replace(ESCAPED, "")
