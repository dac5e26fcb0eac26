"""The audit's schema check: its fast path never accepts what trade.v1 rejects.

`plain_bytes` (msgspec's typed decoding, in C) and `plain_trade` (the same tests in Python, on
a parsed record) let the usual record through without the JSON Schema validator (which costs
some 30 µs a record); anything else goes to the validator. So the one property that matters:
whatever either accepts, the validator accepts too, read as orjson reads it; and the
pipeline's own records take the fast path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from simulator import Market
from sources.audit.schema import (
    TradeSchema,
    decode_plain,
    plain_bytes,
    plain_trade,
    timestamp_text_ms,
)
from tests.support.audit import market_topic
from tests.support.schemas import validator

VALID = {
    "pair": "BTC/USD",
    "price": 65000.1,
    "volume": "0.01",
    "side": "buy",
    "order_type": "market",
    "trade_id": 4665906,
    "timestamp_ms": 1695628177708,
    "timestamp": "2023-09-25T07:49:37.708706Z",
    "origin": "ws",
}
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "buy",
            "sell",
            "market",
            "limit",
            "ws",
            "rest",
            "1.50",
            "0",
            "1.5",
            "A/B",
            "/B",
            "2023-09-25T07:49:37Z",
            "2023-09-25T07:49:37.708706+02:00",
            "2023-13-25T07:49:37.7Z",
            "2023-09-25T07:49:37.708706Z\n",
            "\uff12\uff10\uff12\uff13-09-25T07:49:37.708706Z",
        ]  # full-width digits
    )
)
JSON = (
    LEAVES | st.lists(LEAVES, max_size=2) | st.dictionaries(st.text(max_size=3), LEAVES, max_size=2)
)


@settings(deadline=None)  # no timing: machines under load are slow
@given(
    changes=st.dictionaries(st.sampled_from(sorted(VALID)), JSON, max_size=3),
    dropped=st.sets(st.sampled_from(sorted(VALID)), max_size=2),
)
@example(changes={"trade_id": 5.0}, dropped=set())
@example(changes={"timestamp": "2023-09-25T07:49:37.708706+00:00"}, dropped=set())
@example(changes={"price": True}, dropped=set())
def test_what_the_fast_path_accepts_the_schema_accepts(changes: dict, dropped: set) -> None:
    record = {k: v for k, v in {**VALID, **changes}.items() if k not in dropped}
    schema_errors = list(validator("trade.v1").iter_errors(record))
    if plain_trade(record) is not None:
        assert not schema_errors, (record, schema_errors)
    assert bool(TradeSchema().errors(record)) == bool(schema_errors)


@settings(deadline=None)  # no timing: machines under load are slow
@given(
    changes=st.dictionaries(st.sampled_from(sorted(VALID)), JSON, max_size=3),
    dropped=st.sets(st.sampled_from(sorted(VALID)), max_size=2),
    added=st.dictionaries(st.text(max_size=3), JSON, max_size=1),
)
@example(changes={"trade_id": 5.0}, dropped=set(), added={})
@example(changes={"volume": "1.5\n"}, dropped=set(), added={})
@example(changes={"price": 0}, dropped=set(), added={})
@example(changes={"timestamp_ms": 2**70}, dropped=set(), added={})
@example(changes={}, dropped=set(), added={"note": "x"})
def test_what_msgspec_accepts_the_schema_accepts_as_orjson_reads_it(
    changes: dict, dropped: set, added: dict
) -> None:
    record = {k: v for k, v in {**VALID, **added, **changes}.items() if k not in dropped}
    value = json.dumps(record).encode()
    if plain_bytes(value) is None:
        return
    read = orjson.loads(value)  # what the slow path and the validator would see
    assert not list(validator("trade.v1").iter_errors(read)), read
    assert plain_bytes(value) == timestamp_text_ms(read["timestamp"])
    trade = decode_plain(value)
    assert {f: getattr(trade, f) for f in trade.__struct_fields__} == read


def test_msgspec_refuses_what_orjson_cannot_read_even_in_a_field_it_would_skip() -> None:
    """msgspec skips the value of a field it does not know without checking its UTF-8; the
    fast path must not take such a record that orjson (the slow path) says is no JSON."""
    value = orjson.dumps(VALID)[:-1] + b',"note":"\xff"}'  # not UTF-8
    assert plain_bytes(orjson.dumps(VALID)) == VALID["timestamp_ms"]
    assert plain_bytes(value) is None


def test_the_pipelines_records_take_the_fast_path_in_both_value_modes() -> None:
    market = Market(["BTC/USD", "DOGE/USD"], seed=3)
    market.seed_history(count_per_pair=200, span_seconds=10_000)
    for decimal_strings in (False, True):
        for record in market_topic(market, decimal_strings=decimal_strings):
            assert plain_trade(record.value) == record.value["timestamp_ms"], record.value
            value = orjson.dumps(record.value)
            assert plain_bytes(value) == record.value["timestamp_ms"], record.value


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_the_fast_time_reading_agrees_with_datetime(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    delta = moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    assert timestamp_text_ms(text) == delta // timedelta(milliseconds=1)
    assert timestamp_text_ms(text[:-1] + "+00:00") is None  # another form: the slow path
