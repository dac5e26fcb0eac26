"""The audit's own reading of Kraken's REST answers, its paging by time and its comparison."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.audit.findings import Hole
from sources.audit.rest_rows import (
    KrakenError,
    RestTrade,
    TradesAnswer,
    plain_decimal,
    read_asset_pairs,
    read_trades,
)
from sources.audit.verify import PairVerifier, TimePager

BODY = (
    b'{"error":[],"result":{"XXBTZUSD":[["65000.10000","0.01000000",1695628177.7087069,'
    b'"s","m","",4665906],["65000.2","1",1695628177.7087069,"b","l","",4665907],'
    b'["x","1",1,"b","l","",4665908],[1,2]],"last":"1695628177708706900"}}'
)


def test_rows_keep_kraken_s_text_and_time_to_the_nanosecond() -> None:
    answer = read_trades(BODY)
    first, second = answer.trades
    assert first == RestTrade(
        4665906, "65000.10000", "0.01000000", 1695628177708706900, "sell", "market"
    )
    assert first.time_us == 1695628177708706  # truncated, as the WebSocket writes it
    assert (second.side, second.order_type) == ("buy", "limit")
    assert len(answer.bad_rows) == 2 and answer.last == 1695628177708706900


def test_kraken_errors_are_raised_and_throttling_is_told_apart() -> None:
    with pytest.raises(KrakenError) as throttled:
        read_trades(b'{"error":["EGeneral:Too many requests"]}')
    assert throttled.value.throttled
    with pytest.raises(KrakenError) as unknown:
        read_trades(b'{"error":["EQuery:Unknown asset pair"]}')
    assert not unknown.value.throttled
    with pytest.raises(KrakenError):
        read_trades(b"<html>")


def test_asset_pairs_map_v2_symbols_to_rest_names() -> None:
    body = orjson.dumps(
        {
            "error": [],
            "result": {
                "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD"},
                "XDGUSD": {"altname": "XDGUSD", "wsname": "XDG/USD"},
                "SOLUSD": {"altname": "SOLUSD", "wsname": "SOL/USD"},
            },
        }
    )
    assert read_asset_pairs(body) == {
        "BTC/USD": "XBTUSD",
        "DOGE/USD": "XDGUSD",
        "SOL/USD": "SOLUSD",
    }


def test_plain_decimal() -> None:
    assert plain_decimal("105433.60000") == "105433.6"
    assert plain_decimal("65000.00000") == "65000"
    assert plain_decimal("0.00001000") == "0.00001"
    assert plain_decimal("12") == "12"


# --- paging by time ---------------------------------------------------------------------


def fake_kraken(trades: list[RestTrade]):
    """Kraken's Trades over `trades`: up to 1,000 with a time after `since` (exclusive)."""

    def answer(since: int) -> TradesAnswer:
        page = [t for t in trades if t.time_ns > since][:1000]
        return TradesAnswer(tuple(page), (), page[-1].time_ns if page else since)

    return answer


def market(group_sizes: list[int]) -> list[RestTrade]:
    """Trades in groups that share one time each (100 ns apart, as Kraken's REST writes)."""
    trades, trade_id = [], 1
    for group, size in enumerate(group_sizes):
        for _ in range(size):
            trades.append(RestTrade(trade_id, "1", "1", 10**18 + group * 100, "buy", "limit"))
            trade_id += 1
    return trades


def page_through(trades: list[RestTrade], start_ns: int, end_ns: int) -> tuple[list[int], int]:
    pager, kraken = TimePager(start_ns, end_ns), fake_kraken(trades)
    got, calls = [], 0
    while not pager.done:
        got += [t.trade_id for t in pager.take(kraken(pager.since))]
        calls += 1
        assert calls < 1000
    return got, pager.jumps


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.lists(st.integers(1, 40), min_size=1, max_size=200), st.data())
def test_paging_by_time_never_skips_trades_that_share_a_boundary_s_time(sizes, data) -> None:
    trades = market(sizes)
    start = data.draw(st.sampled_from(trades)).time_ns
    end = data.draw(st.sampled_from([t for t in trades if t.time_ns >= start])).time_ns
    got, jumps = page_through(trades, start, end)
    assert got == [t.trade_id for t in trades if start <= t.time_ns <= end]
    assert jumps == 0


def test_a_page_that_is_all_one_instant_moves_on_by_the_cursor() -> None:
    trades = market([5, 1500, 5])  # 1,500 trades at one instant: more than a page
    got, jumps = page_through(trades, trades[0].time_ns, trades[-1].time_ns)
    assert jumps == 1
    assert got == [*range(1, 1006), *range(1506, 1511)]  # what a page beyond could not show


# --- comparison -------------------------------------------------------------------------


def topic_record(trade_id: int, **fields) -> dict:
    return {
        "pair": "BTC/USD",
        "price": 105433.6,
        "volume": 0.5,
        "side": "buy",
        "order_type": "limit",
        "trade_id": trade_id,
        "timestamp_ms": 1695628177708,
        "timestamp": "2023-09-25T07:49:37.708706Z",
        "origin": "rest",
        **fields,
    }


def rest_trade(
    trade_id: int,
    price: str = "105433.60000",
    volume: str = "0.50000000",
    time: str = "1695628177.7087069",
) -> RestTrade:
    ns = int(Decimal(time) * 10**9)
    return RestTrade(trade_id, price, volume, ns, "buy", "limit")


def verified(records: list[dict], trades: list[RestTrade], holes=(), **window) -> PairVerifier:
    ids = [r["trade_id"] for r in records]
    verifier = PairVerifier("BTC/USD", min(ids), max(ids), holes, **window)
    for record in records:
        verifier.add_topic(record)
    verifier.check(trades)
    verifier.finish()
    return verifier


def differences(verifier: PairVerifier) -> set[tuple]:
    return {(m.trade_id, m.field) for m in verifier.mismatches}


def test_each_field_is_compared_exactly_in_the_topic_s_value_mode() -> None:
    records = [
        topic_record(1),  # numbers: the double nearest Kraken's decimal
        topic_record(2, price="105433.6", volume="0.5"),  # decimal_strings: its plain text
        topic_record(3, price=math.nextafter(105433.6, 1e6)),  # one double off Kraken's
        topic_record(4, price="105433.60"),  # not the plain form
        topic_record(5, side="sell", timestamp="2023-09-25T07:49:37.708707Z"),
        topic_record(6, timestamp_ms=1695628177709),
        topic_record(7, volume="79099442.28268421"),  # 16 digits: exact as a string ...
        topic_record(8, volume=79099442.28268421),  # ... and as the nearest double
    ]
    trades = [rest_trade(i) for i in range(1, 7)] + [
        rest_trade(7, volume="79099442.28268421"),
        rest_trade(8, volume="79099442.28268421"),
    ]
    verifier = verified(records, trades)
    assert verifier.compared == 8
    assert differences(verifier) == {
        (3, "price"),
        (4, "price"),
        (5, "side"),
        (5, "timestamp"),
        (6, "timestamp_ms"),
    }
    assert not verifier.not_served


def test_holes_are_checked_and_edges_count_only_in_an_explicit_window() -> None:
    records = [topic_record(i) for i in (10, 11, 15, 16, 20)]
    holes = [Hole(12, 14, None, None), Hole(17, 19, None, None)]
    served = [rest_trade(i) for i in (8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 21)]  # lacks 17..19
    verifier = verified(records, served, holes)
    assert [h.rest_served for h in holes] == [3, 0]
    assert not verifier.missing_start and not verifier.missing_end
    explicit = verified(
        records,
        served,
        [Hole(12, 14, None, None), Hole(17, 19, None, None)],
        since_ns=0,
        until_ns=2 * 10**18,
    )
    assert list(explicit.missing_start) == [8, 9] and list(explicit.missing_end) == [21]


def test_topic_records_kraken_does_not_serve_are_listed() -> None:
    records = [topic_record(i) for i in (1, 2, 3, 4)]
    verifier = verified(records, [rest_trade(1), rest_trade(3)])
    assert list(verifier.not_served) == [2, 4] and verifier.compared == 2
