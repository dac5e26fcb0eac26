"""Candles: first/last trade_id and `complete` (contiguous, and continuing the previous one)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from sources.candles import Continuity, add_trade, candle_record, is_trade, start_candle
from tests.support.schemas import assert_valid
from tests.support.state import DictState

WINDOW = 1000


def record(trade_id: int, at_ms: int, price: Any = 10.0, volume: Any = 1.0) -> dict[str, Any]:
    return {
        "pair": "BTC/USD",
        "price": price,
        "volume": volume,
        "side": "buy",
        "order_type": "limit",
        "trade_id": trade_id,
        "timestamp_ms": at_ms,
        "timestamp": "2023-11-14T22:13:20.000000Z",
        "origin": "ws",
    }


def candles_of(ids_and_times: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """What the pipeline writes for these trades (window order), `complete` included."""
    windows: dict[int, Any] = {}
    for trade_id, at in ids_and_times:
        start = at // WINDOW * WINDOW
        state = windows.get(start)
        trade = record(trade_id, at)
        windows[start] = start_candle(trade) if state is None else add_trade(state, trade)
    continuity, state = Continuity(), DictState()
    return [
        continuity(candle_record({"start": s, "end": s + WINDOW, "value": v}), state)
        for s, v in sorted(windows.items())
    ]


def flags(candles: list[dict[str, Any]]) -> list[tuple[int, int, bool]]:
    return [(c["first_trade_id"], c["last_trade_id"], c["complete"]) for c in candles]


def test_contiguous_candles_are_complete_after_the_first() -> None:
    candles = candles_of([(i, i * 100) for i in range(1, 40)])  # ten trades a window
    assert flags(candles) == [(1, 9, False), (10, 19, True), (20, 29, True), (30, 39, True)]
    assert_valid(candles, "candle.v1")


def test_a_gap_inside_a_window_or_between_two_marks_only_that_candle() -> None:
    inside = [(i, i * 100) for i in range(1, 40) if i not in (14, 15)]
    assert [c["complete"] for c in candles_of(inside)] == [False, False, True, True]
    between = [(i, i * 100) for i in range(1, 40) if i != 20]  # the first trade of window 2
    assert flags(candles_of(between)) == [
        (1, 9, False),
        (10, 19, True),
        (21, 29, False),
        (30, 39, True),
    ]


def test_a_quiet_pair_continues_its_previous_candle() -> None:
    quiet = [(1, 100), (2, 200), (3, 5_100), (4, 9_900)]  # windows 1..4 and 6..8 empty
    assert flags(candles_of(quiet)) == [(1, 2, False), (3, 3, True), (4, 4, True)]


def test_a_candle_written_again_after_a_crash_is_judged_as_the_first_time() -> None:
    continuity, state = Continuity(), DictState()
    first = candles_of([(i, i * 100) for i in range(1, 20)])
    for candle in first:
        continuity(dict(candle), state)
    again = continuity(dict(first[-1]), state)  # the last window, replayed
    assert again["complete"] is True


@given(st.lists(st.integers(0, 60), min_size=1, max_size=60), st.sets(st.integers(1, 60)))
def test_complete_means_no_trade_id_is_missing_since_the_first_candle(
    gaps: list[int], missing: set[int]
) -> None:
    """Trades 1..n at rising times; whatever is missing, a candle is complete exactly when
    it holds every trade_id from the previous candle's last + 1 to its own last."""
    at, trades = 0, []
    for trade_id, pause in enumerate(gaps, start=1):
        at += pause * 37
        if trade_id not in missing:
            trades.append((trade_id, at))
    if not trades:
        return
    candles = candles_of(trades)
    previous_last = None
    present = {t for t, _ in trades}
    for candle in candles:
        last = candle["last_trade_id"]
        expected = previous_last is not None and all(
            i in present for i in range(previous_last + 1, last + 1)
        )
        assert candle["complete"] is expected
        previous_last = last


def test_old_window_state_without_trade_id_bounds_still_works() -> None:
    state = dict(start_candle(record(5, 10)))
    del state["first_trade_id"], state["last_trade_id"]  # stored by the previous version
    state = add_trade(orjson.loads(orjson.dumps(state)), record(6, 20))
    candle = candle_record({"start": 0, "end": WINDOW, "value": state})
    assert (candle["first_trade_id"], candle["last_trade_id"]) == (5, 6)


def test_decimal_string_trades_make_candles_too() -> None:
    trade = record(1, 10, price="65000.1", volume="0.00000001")
    assert is_trade(trade)
    state = add_trade(start_candle(trade), record(2, 20, price="65000.3", volume="2"))
    candle = candle_record({"start": 0, "end": WINDOW, "value": state})
    assert (candle["open"], candle["close"], candle["high"]) == (65000.1, 65000.3, 65000.3)
    assert not is_trade(record(1, 10, price="1e5")) and not is_trade(record(1, 10, price="-1"))
