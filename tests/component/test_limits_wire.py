"""The size limits over real sockets, against the simulator: a WebSocket message over the
cap costs a reconnect (an ERROR, the message never read), a REST answer over it a failed
call, and what follows is read as usual."""

from __future__ import annotations

import logging
import re
import time

import orjson
import pytest

from simulator import KrakenSimulator
from sources.kraken.rest import KrakenRest, RestError
from sources.kraken.session import ConnectionLost, KrakenSession, SessionStats
from sources.kraken.subscriptions import Subscriptions

PAIR = "BTC/USD"
CAP = 64 * 1024


pytestmark = [
    pytest.mark.market((PAIR,), seed=21, seed_history={"count_per_pair": 20, "span_seconds": 60}),
    pytest.mark.kraken(rate=20.0, heartbeat_interval=0.5),
]


def session_of(kraken: KrakenSimulator) -> KrakenSession:
    session = KrakenSession(
        kraken.ws_url, Subscriptions((PAIR,)), stats=SessionStats(), max_message=CAP
    )
    session.open(req_id=1)
    return session


def read_until_subscribed(session: KrakenSession, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while PAIR not in session.subscribed:
        assert time.monotonic() < deadline
        session.read(0.2)


def test_a_message_over_the_cap_drops_the_connection_with_an_error(
    kraken: KrakenSimulator,
) -> None:
    session = session_of(kraken)
    read_until_subscribed(session)
    frame = orjson.dumps({"channel": "trade", "type": "update", "data": [], "pad": "x" * CAP})
    kraken.send_raw(frame.decode())
    deadline = time.monotonic() + 10
    with pytest.raises(ConnectionLost) as lost:
        while time.monotonic() < deadline:
            session.read(0.2)
    assert lost.value.level == logging.ERROR
    assert f"at least {len(frame)} bytes, over the limit of {CAP}" in str(lost.value)
    assert "max_ws_message_mb" in str(lost.value)
    session.close()
    again = session_of(kraken)  # the next connection reads as usual
    read_until_subscribed(again)
    again.close()


def test_a_rest_answer_over_the_cap_is_a_failed_call(kraken: KrakenSimulator) -> None:
    rest = KrakenRest(kraken.rest_url, min_interval=0, max_attempts=1, max_body=CAP)
    kraken.rest_oversized(2 * CAP, 1)
    with pytest.raises(RestError, match="answer too long: a body of at least") as failed:
        rest.trades(PAIR, 0)
    said = re.search(r"at least (\d+) bytes, over the limit of (\d+)", str(failed.value))
    assert said and int(said[1]) >= 2 * CAP and int(said[2]) == CAP
    assert not failed.value.permanent
    ids = [trade.trade_id for trade in rest.trades(PAIR, 0).trades]  # then the history, as usual
    assert len(ids) >= 20 and ids == list(range(ids[0], ids[0] + len(ids)))
    rest.close()
