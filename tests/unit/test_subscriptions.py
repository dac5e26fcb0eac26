"""The subscriptions state machine, driven with Kraken's frames and a clock value: no socket.

As `websockets`' protocol tests: frames go in through `protocol.parse_frame`, the requests to
send and the outcomes (subscribed, left out, fatal, reconnect) come out.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from sources.kraken.protocol import TradeBatch, parse_frame
from sources.kraken.session import ConnectionLost, KrakenSession, SessionStats
from sources.kraken.subscriptions import (
    Fatal,
    LeftOut,
    Outcome,
    Reconnect,
    Subscribed,
    Subscriptions,
)

PAIRS = ("BTC/USD", "ETH/USD")


def ack(symbol: str, method: str = "subscribe", req_id: int = 1) -> str:
    result = {"channel": "trade", "snapshot": True, "symbol": symbol}
    return orjson.dumps(
        {"method": method, "req_id": req_id, "result": result, "success": True}
    ).decode()


def refusal(
    symbol: str | None, error: str = "Currency pair not supported", method: str = "subscribe"
) -> str:
    message = {"method": method, "req_id": 1, "success": False, "error": error}
    if symbol is not None:
        message["symbol"] = symbol
    return orjson.dumps(message).decode()


def feed(subscriptions: Subscriptions, frame: str, now: float = 0.0) -> list[Outcome | None]:
    """What the state machine makes of one frame (every event of it)."""
    return [subscriptions.receive(event, now) for event in parse_frame(frame)]


def request(text: str) -> dict:
    return orjson.loads(text)


def symbols(text: str | None) -> list[str]:
    assert text is not None
    return request(text)["params"]["symbol"]


# --- asking -------------------------------------------------------------------------------


def test_the_first_request_asks_for_every_pair_with_the_snapshot_setting() -> None:
    subscriptions = Subscriptions(PAIRS, snapshot=False)
    assert request(subscriptions.opened(0.0, req_id=3)) == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": list(PAIRS), "snapshot": False},
        "req_id": 3,
    }
    assert subscriptions.next_request_at is None  # all in one request
    assert subscriptions.next_request(100.0, req_id=4) is None


def test_batches_go_out_one_interval_apart_and_only_when_due() -> None:
    pairs = tuple(f"P{i}/USD" for i in range(5))
    subscriptions = Subscriptions(pairs, batch=2, interval=0.5)
    assert symbols(subscriptions.opened(10.0, req_id=1)) == ["P0/USD", "P1/USD"]
    assert subscriptions.next_request_at == 10.5
    assert subscriptions.next_request(10.4, req_id=2) is None  # not due yet
    assert symbols(subscriptions.next_request(10.5, req_id=2)) == ["P2/USD", "P3/USD"]
    assert subscriptions.next_request_at == 11.0
    assert subscriptions.next_request(10.9, req_id=3) is None
    assert symbols(subscriptions.next_request(11.2, req_id=3)) == ["P4/USD"]
    assert subscriptions.next_request_at is None and subscriptions.next_request(99, 4) is None


def test_a_subscribe_ack_counts_the_pair_subscribed_and_again_on_the_next_connection() -> None:
    subscriptions = Subscriptions(PAIRS)
    subscriptions.opened(0.0, req_id=1)
    assert feed(subscriptions, ack("BTC/USD")) == [Subscribed("BTC/USD")]
    assert subscriptions.subscribed == {"BTC/USD"} and not subscriptions.fully_subscribed
    assert feed(subscriptions, ack("ETH/USD")) == [Subscribed("ETH/USD")]
    assert subscriptions.fully_subscribed
    subscriptions.opened(5.0, req_id=2)  # a new connection starts over
    assert subscriptions.subscribed == set() and not subscriptions.fully_subscribed
    assert feed(subscriptions, ack("BTC/USD")) == [Subscribed("BTC/USD", again=True)]


def test_the_status_names_the_connection_until_the_next_one() -> None:
    subscriptions = Subscriptions(PAIRS)
    subscriptions.opened(0.0, req_id=1)
    status = '{"channel":"status","type":"update","data":[{"system":"online","connection_id":7}]}'
    assert feed(subscriptions, status) == [None]
    assert subscriptions.connection_id == 7
    subscriptions.opened(1.0, req_id=2)
    assert subscriptions.connection_id is None


# --- refusals: fatal, left out, or reconnect ----------------------------------------------


def test_a_named_pair_refused_before_it_was_ever_accepted_is_fatal() -> None:
    subscriptions = Subscriptions(PAIRS, optional={"ETH/USD"})
    subscriptions.opened(0.0, req_id=1)
    [outcome] = feed(subscriptions, refusal("BTC/USD"))
    assert outcome == Fatal(
        "Kraken rejected the subscription to BTC/USD: Currency pair not supported"
    )


def test_a_pair_from_a_pattern_refused_is_left_out_for_good() -> None:
    pairs = ("BTC/USD", "ETH/USD", "SOL/USD")
    subscriptions = Subscriptions(pairs, optional=set(pairs), batch=2)
    subscriptions.opened(0.0, req_id=1)
    assert feed(subscriptions, ack("BTC/USD")) == [Subscribed("BTC/USD")]
    assert feed(subscriptions, refusal("ETH/USD")) == [
        LeftOut("ETH/USD", "Currency pair not supported")
    ]
    assert subscriptions.left_out == {"ETH/USD": "Currency pair not supported"}
    assert subscriptions.wanted == ("BTC/USD", "SOL/USD")
    assert not subscriptions.fully_subscribed  # SOL/USD's request is still to go
    assert symbols(subscriptions.next_request(0.5, req_id=2)) == ["SOL/USD"]
    feed(subscriptions, ack("SOL/USD"))
    assert subscriptions.fully_subscribed  # two subscribed, one left out
    # the next connection does not ask for it again
    assert symbols(subscriptions.opened(9.0, req_id=3)) == ["BTC/USD", "SOL/USD"]
    assert subscriptions.next_request_at is None


def test_a_left_out_pair_is_dropped_from_a_batch_not_sent_yet() -> None:
    pairs = ("A/USD", "B/USD", "C/USD")
    subscriptions = Subscriptions(pairs, optional=set(pairs), batch=1)
    subscriptions.opened(0.0, req_id=1)
    feed(subscriptions, refusal("B/USD"))  # refused before its own request went out
    assert subscriptions.next_request(0.5, req_id=2) is None  # its batch held only B/USD
    assert symbols(subscriptions.next_request(1.0, req_id=3)) == ["C/USD"]


def test_a_refusal_of_a_pair_accepted_before_means_reconnect_even_from_a_pattern() -> None:
    subscriptions = Subscriptions(PAIRS, optional=set(PAIRS))
    subscriptions.opened(0.0, req_id=1)
    feed(subscriptions, ack("BTC/USD"))
    subscriptions.opened(30.0, req_id=2)  # Kraken had accepted it, on an earlier connection
    [outcome] = feed(subscriptions, refusal("BTC/USD", error="Already subscribed"))
    assert outcome == Reconnect("Kraken refused to subscribe BTC/USD: Already subscribed")
    assert subscriptions.left_out == {}


def test_what_was_accepted_is_shared_by_the_connections_of_a_group() -> None:
    accepted: set[str] = set()
    first = Subscriptions(("BTC/USD",), acknowledged=accepted)
    second = Subscriptions(("ETH/USD",), acknowledged=accepted)
    first.opened(0.0, 1)
    second.opened(0.0, 2)
    assert feed(second, refusal(None, error="Bad request")) == [
        Fatal("Kraken rejected the subscription to ETH/USD: Bad request")
    ]  # no pair accepted on any connection yet: the request itself is wrong
    feed(first, ack("BTC/USD"))
    assert feed(second, refusal(None, error="Bad request")) == [
        Reconnect("Kraken refused to subscribe a pair: Bad request")
    ]


def test_a_refusal_of_a_pair_not_of_this_connection_or_a_server_error_means_reconnect() -> None:
    subscriptions = Subscriptions(PAIRS)
    subscriptions.opened(0.0, req_id=1)
    assert feed(subscriptions, refusal("SOL/USD")) == [
        Reconnect("Kraken refused to subscribe SOL/USD: Currency pair not supported")
    ]
    assert feed(subscriptions, '{"Error":"Exceeded msg rate"}') == [
        Reconnect("Kraken error: Exceeded msg rate")
    ]


def test_a_refused_unsubscribe_changes_nothing() -> None:
    subscriptions = Subscriptions(PAIRS)
    subscriptions.opened(0.0, req_id=1)
    feed(subscriptions, ack("BTC/USD"))
    refused = refusal("BTC/USD", error="Subscription Not Found", method="unsubscribe")
    assert feed(subscriptions, refused) == [None]
    assert subscriptions.subscribed == {"BTC/USD"} and subscriptions.left_out == {}


# --- resubscribes -------------------------------------------------------------------------


def test_resubscribe_unsubscribes_then_subscribes_with_a_snapshot_in_one_request_each() -> None:
    subscriptions = Subscriptions(PAIRS, snapshot=False)
    subscriptions.opened(0.0, req_id=1)
    for pair in PAIRS:
        feed(subscriptions, ack(pair))
    requests = subscriptions.resubscribe(["ETH/USD", "BTC/USD", "SOL/USD"], req_id=7)
    params = {"channel": "trade", "symbol": ["ETH/USD", "BTC/USD"]}  # SOL: not its pair
    assert [request(r) for r in requests] == [
        {"method": "unsubscribe", "params": params, "req_id": 7},
        {"method": "subscribe", "params": {**params, "snapshot": True}, "req_id": 7},
    ]  # the snapshot though `snapshot` is off: it is the answer
    frames = [ack("ETH/USD", "unsubscribe", 7), ack("BTC/USD", "unsubscribe", 7)]
    for frame in frames:
        assert not any(isinstance(event, TradeBatch) for event in parse_frame(frame))
        assert feed(subscriptions, frame) == [None]
    assert subscriptions.subscribed == set(PAIRS)  # within a resubscribe: still subscribed
    assert feed(subscriptions, ack("ETH/USD", req_id=7)) == [
        Subscribed("ETH/USD", again=True, resubscribed=True)
    ]
    feed(subscriptions, ack("BTC/USD", req_id=7))
    assert subscriptions.subscribed == set(PAIRS)
    assert subscriptions.resubscribe(["SOL/USD"], req_id=8) == []  # none of its pairs
    # an unsubscribe outside a resubscribe: the pair is no longer subscribed
    feed(subscriptions, ack("BTC/USD", "unsubscribe", 9))
    assert subscriptions.subscribed == {"ETH/USD"}


def test_a_resubscribe_cut_short_by_a_reconnect_is_forgotten() -> None:
    subscriptions = Subscriptions(PAIRS)
    subscriptions.opened(0.0, req_id=1)
    feed(subscriptions, ack("ETH/USD"))
    subscriptions.resubscribe(["ETH/USD"], req_id=2)
    subscriptions.opened(5.0, req_id=3)  # lost before the answer came
    assert feed(subscriptions, ack("ETH/USD", req_id=3)) == [Subscribed("ETH/USD", again=True)]


# --- the heartbeat watchdog ---------------------------------------------------------------


def test_the_watchdog_calls_for_a_reconnect_after_heartbeat_timeout_without_a_message() -> None:
    subscriptions = Subscriptions(PAIRS, heartbeat_timeout=10.0)
    subscriptions.opened(100.0, req_id=1)
    assert subscriptions.check_heartbeat(110.0) is None  # opening counts as heard
    subscriptions.heard(109.0)  # any frame: trades, a heartbeat
    assert subscriptions.check_heartbeat(119.0) is None
    assert subscriptions.check_heartbeat(119.5) == Reconnect("no message for 10.5 s")
    feed(subscriptions, '{"channel":"heartbeat"}', now=119.5)  # an event counts too
    assert subscriptions.check_heartbeat(129.0) is None
    subscriptions.opened(500.0, req_id=2)  # a new connection starts the watch over
    assert subscriptions.check_heartbeat(505.0) is None


# --- logs ---------------------------------------------------------------------------------


def test_a_connection_of_many_pairs_logs_one_line_once_all_are_subscribed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pairs = tuple(f"P{i}/USD" for i in range(12))
    subscriptions = Subscriptions(pairs, optional={"P3/USD"})
    subscriptions.opened(50.0, req_id=1)
    with caplog.at_level(logging.INFO, logger="sources.kraken.subscriptions"):
        for pair in pairs:
            feed(subscriptions, ack(pair) if pair != "P3/USD" else refusal(pair), now=52.5)
        feed(subscriptions, ack("P0/USD"), now=53.0)  # a late duplicate: no second line
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [
        "Subscribed to all 11 pairs of this connection (connection_id=None) in 2.5 s, 1 left out"
    ]


# --- the thin session around it, without a socket -----------------------------------------


def session_of(subscriptions: Subscriptions) -> KrakenSession:
    return KrakenSession("ws://test/v2", subscriptions, stats=SessionStats())


def test_a_session_never_opened_sends_nothing() -> None:
    subscriptions = Subscriptions(PAIRS, batch=1)
    session = session_of(subscriptions)
    assert not session.resubscribe(PAIRS, req_id=1)  # the next connection subscribes them
    assert not session.subscribe_next(req_id=2, now=100.0)
    assert session.next_subscribe_at is None and session.fileno() == -1
    with pytest.raises(ConnectionLost, match="not connected"):
        session.read(0.1)


def test_check_silence_is_the_deprecated_name_of_check_heartbeat() -> None:
    subscriptions = Subscriptions(PAIRS, heartbeat_timeout=10.0)
    subscriptions.opened(0.0, req_id=1)
    session = session_of(subscriptions)
    session.check_heartbeat(5.0)
    with pytest.deprecated_call():
        session.check_silence(5.0)
    with pytest.raises(ConnectionLost, match=r"no message for 11\.0 s"):
        session.check_heartbeat(11.0)
    with pytest.deprecated_call(), pytest.raises(ConnectionLost):
        session.check_silence(11.0)


def test_the_session_keywords_before_0_2_still_work_with_a_deprecation_warning() -> None:
    accepted: set[str] = set()
    with pytest.deprecated_call(match="pass a Subscriptions"):
        session = KrakenSession(
            "ws://test/v2",
            PAIRS,
            acknowledged=accepted,
            stats=SessionStats(),
            snapshot=False,
            subscribe_batch=1,
            subscribe_interval=2.0,
            heartbeat_timeout=3.0,
            optional={"ETH/USD"},
        )
    subscriptions = session.subscriptions
    assert session.pairs == PAIRS and subscriptions.acknowledged is accepted
    assert request(subscriptions.opened(0.0, req_id=1))["params"] == {
        "channel": "trade",
        "symbol": ["BTC/USD"],
        "snapshot": False,
    }
    assert subscriptions.next_request_at == 2.0
    assert subscriptions.check_heartbeat(3.5) == Reconnect("no message for 3.5 s")
    assert feed(subscriptions, refusal("ETH/USD")) == [
        LeftOut("ETH/USD", "Currency pair not supported")
    ]
    with pytest.raises(TypeError, match="snapshots"):
        KrakenSession("ws://test/v2", PAIRS, stats=SessionStats(), snapshots=False)
    with pytest.raises(TypeError, match="snapshot"):  # given twice: which one wins?
        KrakenSession("ws://test/v2", Subscriptions(PAIRS), stats=SessionStats(), snapshot=False)
