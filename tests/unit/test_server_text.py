"""What a Kraken server says reaches our events and log lines escaped and bounded: errors,
statuses, excerpts of malformed frames, the pairs and statuses of its list of instruments."""

from __future__ import annotations

import json
import unicodedata

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.kraken.instruments import InstrumentsUnavailable, parse_instrument_snapshot
from sources.kraken.protocol import Malformed, ServerError, Status, SubscribeError, parse_frame

FORGED = "Exceeded msg rate\n[2024-01-01 00:00:00] [ERROR] forged \x1b[31mred\x1b[0m"
UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def safe(text: str, most: int = 300) -> bool:
    """One line, no control or format character, bounded."""
    return len(text) <= most and not any(unicodedata.category(c) in UNSAFE for c in text)


def event_of(message: object):
    [event] = parse_frame(orjson.dumps(message))
    return event


def test_a_server_error_is_escaped() -> None:
    event = event_of({"error": FORGED})
    assert isinstance(event, ServerError) and safe(event.error)
    assert event.error == FORGED.replace("\n", "\\n").replace("\x1b", "\\x1b")


def test_a_subscribe_error_is_escaped_and_cut() -> None:
    said = FORGED + "x" * 5000
    event = event_of({"method": "subscribe", "success": False, "error": said, "symbol": "A/B"})
    assert isinstance(event, SubscribeError) and safe(event.error)
    assert event.error.startswith("Exceeded msg rate\\n[2024") and "chars)" in event.error


def test_a_status_is_escaped() -> None:
    data = [{"system": "online\x1b[2J", "api_version": "v2\n", "version": 7, "connection_id": 1}]
    event = event_of({"channel": "status", "type": "update", "data": data})
    assert isinstance(event, Status)
    assert (event.system, event.api_version, event.version) == ("online\\x1b[2J", "v2\\n", "7")


def test_malformed_input_is_escaped() -> None:
    [unknown] = parse_frame(orjson.dumps({"channel": "x\n" * 1000}))
    [not_json] = parse_frame(b"\x1b[2J\nnot json \xff")
    trade = {"symbol": "\x1b[31mBTC/USD", "side": "buy\n"}
    [invalid] = parse_frame(orjson.dumps({"channel": "trade", "type": "update", "data": [trade]}))
    for event in (unknown, not_json, invalid):
        assert isinstance(event, Malformed) and safe(event.reason) and safe(event.excerpt)
    assert not_json.excerpt == "\\x1b[2J\\nnot json \ufffd"


TEXTS = st.one_of(st.text(), st.sampled_from([FORGED, "\u202e", "\ud800", "x" * 3000]))


@settings(deadline=None)  # no timing: machines under load are slow
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "error": TEXTS,
            "Error": TEXTS,
            "method": st.sampled_from(["subscribe", "unsubscribe", "pong", "x"]),
            "channel": st.one_of(st.sampled_from(["status", "trade", "heartbeat"]), TEXTS),
            "success": st.booleans(),
            "symbol": TEXTS,
            "type": st.sampled_from(["snapshot", "update"]),
            "data": st.lists(st.dictionaries(TEXTS, TEXTS, max_size=3), max_size=2),
        },
    )
)
def test_every_text_the_server_chose_comes_safe(message: dict) -> None:
    for event in parse_frame(json.dumps(message)):  # \ud800 escaped: orjson refuses it
        texts = {
            Malformed: lambda e: [e.reason, e.excerpt],
            ServerError: lambda e: [e.error],
            SubscribeError: lambda e: [e.error],
            Status: lambda e: [e.system, e.api_version or "", e.version or ""],
        }.get(type(event), lambda e: [])(event)
        assert all(safe(text, 300) for text in texts), event


def test_the_list_of_instruments_is_escaped() -> None:
    pairs = [
        {"symbol": "BTC/USD", "status": "online"},
        {"symbol": "EVIL\n[ERROR] x/USD", "status": "online\x1b[2J"},
    ]
    message = {"channel": "instrument", "type": "snapshot", "data": {"pairs": pairs}}
    instruments = parse_instrument_snapshot(message)
    assert instruments is not None and instruments[0].symbol == "BTC/USD"
    assert all(safe(i.symbol) and safe(i.status) for i in instruments)
    assert safe(str(InstrumentsUnavailable(FORGED * 100)), 600)
