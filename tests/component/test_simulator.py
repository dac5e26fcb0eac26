"""The Kraken simulator over real loopback sockets: WebSocket v2 protocol, faults and REST."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
import pytest
import websocket
from hypothesis import given
from hypothesis import strategies as st

from simulator import KrakenSimulator, Market, SimTrade
from simulator.market import pair_info
from simulator.rest import KRAKEN_ERRORS
from tests.support.repo import ROOT
from tests.support.sim_client import (
    PAIRS,
    assert_trades_contiguous,
    collect,
    connect,
    drain,
    get,
    recv,
    seeded_market,
    send,
    subscribe,
    trades_of,
)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[Callable[..., KrakenSimulator]]:
    """A factory of started simulators (stopped after the test); rate 0 unless asked."""
    started: list[KrakenSimulator] = []

    def make(market: Market | None = None, **options: Any) -> KrakenSimulator:
        options.setdefault("rate", 0)
        sim = KrakenSimulator(market or seeded_market(), **options).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- the market -------------------------------------------------------------------------


def test_trade_ws_and_rest_forms() -> None:
    trade = SimTrade("BTC/USD", "sell", 65000.1, 0.01, "market", 4665906, 1695628177708706123)
    assert trade.to_ws() == {
        "symbol": "BTC/USD",
        "side": "sell",
        "price": 65000.1,
        "qty": 0.01,
        "ord_type": "market",
        "trade_id": 4665906,
        "timestamp": "2023-09-25T07:49:37.708706Z",
    }
    row = trade.to_rest_row()
    assert row == ["65000.10000", "0.01000000", 1695628177.708706, "s", "m", "", 4665906]
    buy = SimTrade("ETH/USD", "buy", 1.0, 2.0, "limit", 1, 0)
    assert buy.to_rest_row()[3:5] == ["b", "l"]
    assert buy.to_ws()["timestamp"] == "1970-01-01T00:00:00.000000Z"


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_timestamp_is_rfc3339_microseconds(time_ns: int) -> None:
    text = SimTrade("BTC/USD", "buy", 1.0, 1.0, "limit", 1, time_ns).to_ws()["timestamp"]
    assert TIMESTAMP.match(text)
    moment = datetime.fromtimestamp(time_ns // 1000 / 1e6, UTC)
    assert datetime.fromisoformat(text) == moment.replace(microsecond=time_ns // 1000 % 10**6)


def test_market_is_deterministic_and_ids_rise_by_one() -> None:
    def shape(market: Market) -> list[tuple[Any, ...]]:
        return [(t.symbol, t.side, t.price, t.qty, t.ord_type, t.trade_id) for t in history(market)]

    def history(market: Market) -> list[SimTrade]:
        return [t for pair in market.pairs for t in market.history(pair)]

    a, b, c = Market(PAIRS, seed=4), Market(PAIRS, seed=4), Market(PAIRS, seed=5)
    for market in (a, b, c):
        market.seed_history(20, span_seconds=60, end_ns=10**18)
        market.next_trades(31)
    assert shape(a) == shape(b) != shape(c)
    assert a.pairs == tuple(PAIRS)
    for pair in PAIRS:
        trades = a.history(pair)
        assert [t.trade_id for t in trades] == list(range(1000, 1000 + len(trades)))
        assert all(x.time_ns < y.time_ns for x, y in pairwise(trades))
        assert all(t.side in ("buy", "sell") and t.ord_type in ("market", "limit") for t in trades)
    assert sorted(len(a.history(p)) - 20 for p in PAIRS) == [10, 10, 11]  # round-robin
    assert [t.trade_id for t in Market(["X/Y"], first_trade_id=7).next_trades(2)] == [7, 8]


def test_seed_history_spreads_over_the_span_to_end() -> None:
    market = Market(["BTC/USD"])
    market.seed_history(10, span_seconds=10, end_ns=100 * 10**9)
    times = [t.time_ns for t in market.history("BTC/USD")]
    assert times == [(90 + i) * 10**9 for i in range(1, 11)]
    assert [t.trade_id for t in market.last("BTC/USD", 3)] == [1007, 1008, 1009]
    assert market.trades_since("BTC/USD", 95 * 10**9, 2) == market.history("BTC/USD")[5:7]
    assert market.trades_since("BTC/USD", None, 2) == market.history("BTC/USD")[-2:]
    assert market.trades_since("BTC/USD", 100 * 10**9, 5) == []
    live = market.next_trades(1)[0]
    assert live.time_ns > 100 * 10**9 and live.trade_id == 1010


def test_rest_names_of_pairs() -> None:
    def names(symbol: str) -> tuple[str, str, str]:
        info = pair_info(symbol)
        return info.key, info.altname, info.wsname

    assert names("BTC/USD") == ("XXBTZUSD", "XBTUSD", "XBT/USD")
    assert names("ETH/USD") == ("XETHZUSD", "ETHUSD", "ETH/USD")
    assert names("SOL/USD") == ("SOLUSD", "SOLUSD", "SOL/USD")
    assert names("DOGE/USD") == ("XDGUSD", "XDGUSD", "XDG/USD")
    assert names("ETH/EUR") == ("XETHZEUR", "ETHEUR", "ETH/EUR")
    assert names("ADA/GBP") == ("ADAGBP", "ADAGBP", "ADA/GBP")


# --- WebSocket protocol -----------------------------------------------------------------


def test_status_on_connect(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/v2" and sim.port > 0
    ids = set()
    for _ in range(2):
        ws = connect(sim, status=False)
        status = recv(ws)
        assert status["channel"] == "status" and status["type"] == "update"
        (info,) = status["data"]
        assert info.keys() == {"api_version", "connection_id", "system", "version"}
        assert (info["api_version"], info["system"], info["version"]) == ("v2", "online", "2.0.4")
        assert 0 <= info["connection_id"] < 2**64
        ids.add(info["connection_id"])
        ws.close()
    assert len(ids) == 2
    assert sim.connections_total == 2


def test_subscribe_acks_success_and_failure(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    ws = connect(sim)
    ok, failed = subscribe(ws, ["BTC/USD", "FOO/BAR"], snapshot=False, req_id=1234)
    assert ok.keys() == {"method", "req_id", "result", "success", "time_in", "time_out"}
    assert ok["method"] == "subscribe" and ok["req_id"] == 1234 and ok["success"] is True
    assert ok["result"] == {"channel": "trade", "snapshot": False, "symbol": "BTC/USD"}
    assert failed.keys() == {
        "error",
        "method",
        "req_id",
        "success",
        "symbol",
        "time_in",
        "time_out",
    }
    assert failed["error"] == "Currency pair not supported FOO/BAR"
    assert (failed["method"], failed["req_id"], failed["success"]) == ("subscribe", 1234, False)
    assert failed["symbol"] == "FOO/BAR"
    assert TIMESTAMP.match(ok["time_in"]) and TIMESTAMP.match(failed["time_out"])
    assert drain(ws) == []  # no snapshot was asked for
    assert sim.subscribe_requests == [
        {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": ["BTC/USD", "FOO/BAR"], "snapshot": False},
            "req_id": 1234,
        }
    ]


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_subscription_is_in_the_server_s_state_when_its_ack_arrives(
    simulator: Callable[..., KrakenSimulator], snapshot: bool
) -> None:
    """Tests compare `subscriptions` with what the pipeline logged on its acks: the server
    records a subscription before it answers (once, under load, an e2e test saw a connection
    with half its symbols after the pipeline had all of their acks)."""
    sim = simulator()
    ws = connect(sim)
    send_now = sim._send

    async def slow_send(client: Any, frame: Any) -> Any:  # a busy server: each frame waits
        await asyncio.sleep(0.05)
        return await send_now(client, frame)

    sim._send = slow_send  # type: ignore[method-assign]
    symbols = ["BTC/USD", "ETH/USD"]
    params = {"channel": "trade", "symbol": symbols, "snapshot": snapshot}
    send(ws, {"method": "subscribe", "params": params, "req_id": 1})
    first = recv(ws)
    assert first["success"] is True and first["result"]["symbol"] == "BTC/USD"
    assert sim.subscriptions == [frozenset(symbols)]  # the second symbol's ack is still to come
    assert recv(ws)["result"]["symbol"] == "ETH/USD"


def test_rejected_symbols_fail_even_when_traded(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    sim.reject_symbols({"ETH/USD"})
    ws = connect(sim)
    send(ws, {"method": "subscribe", "params": {"channel": "trade", "symbol": ["ETH/USD"]}})
    ack = recv(ws)
    assert ack["success"] is False and ack["error"] == "Currency pair not supported ETH/USD"
    assert "req_id" not in ack


def test_invalid_requests_get_failure_acks(simulator: Callable[..., KrakenSimulator]) -> None:
    ws = connect(simulator())
    requests: list[dict[str, Any]] = [
        {"method": "subscribe", "req_id": 1},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": "BTC/USD"}, "req_id": 2},
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 3},
        {"method": "frobnicate", "req_id": 4},
    ]
    for request in requests:
        send(ws, request)
        answer = recv(ws)
        assert answer["success"] is False and answer["req_id"] == request["req_id"]
        assert answer["method"] == request["method"]
        assert isinstance(answer["error"], str) and answer["error"]
    ws.send("{not json")
    assert recv(ws)["success"] is False


def test_snapshot_holds_the_last_50_trades(simulator: Callable[..., KrakenSimulator]) -> None:
    market = seeded_market(count_per_pair=80)
    ws = connect(simulator(market))
    acks = subscribe(ws, ["BTC/USD", "ETH/USD"], snapshot=True)
    assert [a["result"]["snapshot"] for a in acks] == [True, True]
    snapshots = [recv(ws), recv(ws)]
    for symbol, snapshot in zip(["BTC/USD", "ETH/USD"], snapshots, strict=True):
        assert snapshot["channel"] == "trade" and snapshot["type"] == "snapshot"
        trades = snapshot["data"]
        assert len(trades) == 50 and {t["symbol"] for t in trades} == {symbol}
        assert [t["trade_id"] for t in trades] == list(range(1030, 1080))
        assert trades == [t.to_ws() for t in market.last(symbol)]
    short = Market(["SOL/USD"])
    short.seed_history(7, span_seconds=7)
    ws = connect(simulator(short))
    subscribe(ws, ["SOL/USD"], snapshot=True)
    assert len(recv(ws)["data"]) == 7


def test_updates_rise_by_one_per_symbol(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(rate=2000.0, batch=5, heartbeat_interval=5)
    ws = connect(sim)
    subscribe(ws, ["BTC/USD", "DOGE/USD"], snapshot=True)
    snapshots = [recv(ws), recv(ws)]
    assert [s["type"] for s in snapshots] == ["snapshot", "snapshot"]
    after = {s["data"][-1]["symbol"]: s["data"][-1]["trade_id"] for s in snapshots}
    messages = collect(ws, 0.5)
    assert all(m["channel"] == "trade" and m["type"] == "update" for m in messages)
    assert all(1 <= len(m["data"]) <= 5 for m in messages)
    assert any(len({t["symbol"] for t in m["data"]}) == 2 for m in messages)  # mixed frames
    trades = trades_of(messages)
    assert {t["symbol"] for t in trades} == {"BTC/USD", "DOGE/USD"}  # only what was asked
    assert len(trades) > 200
    assert_trades_contiguous(trades, after)
    trade = trades[0]
    assert trade.keys() == {"symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"}
    assert isinstance(trade["price"], float) and isinstance(trade["qty"], float)
    assert TIMESTAMP.match(trade["timestamp"])


def test_unsubscribe_stops_updates(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(rate=200.0, heartbeat_interval=5)
    ws = connect(sim)
    subscribe(ws, ["BTC/USD", "ETH/USD"], snapshot=False)
    params = {"channel": "trade", "symbol": ["BTC/USD"]}
    send(ws, {"method": "unsubscribe", "params": params, "req_id": 9})
    messages = collect(ws, 0.2)
    acks = [m for m in messages if m.get("method") == "unsubscribe"]
    assert len(acks) == 1 and acks[0]["success"] is True and acks[0]["req_id"] == 9
    assert acks[0]["result"]["symbol"] == "BTC/USD"
    assert {t["symbol"] for t in trades_of(collect(ws, 0.3))} == {"ETH/USD"}


def test_heartbeats_when_nothing_trades(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(rate=100.0, heartbeat_interval=0.2)
    ws = connect(sim)
    subscribe(ws, ["BTC/USD"], snapshot=False)
    sim.pause_trades(True)
    drain(ws, quiet=0.05)
    messages = collect(ws, 0.7)
    assert messages and all(m == {"channel": "heartbeat"} for m in messages)
    assert 2 <= len(messages) <= 5
    sim.pause_trades(False)
    assert trades_of(collect(ws, 0.3))


def test_ping_pong(simulator: Callable[..., KrakenSimulator]) -> None:
    ws = connect(simulator())
    send(ws, {"method": "ping", "req_id": 101})
    pong = recv(ws)
    assert pong.keys() == {"method", "req_id", "time_in", "time_out"}
    assert pong["method"] == "pong" and pong["req_id"] == 101
    assert TIMESTAMP.match(pong["time_in"]) and pong["time_in"] <= pong["time_out"]
    send(ws, {"method": "ping"})
    assert "req_id" not in recv(ws)


def test_subscribe_rate_limit(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(subscribe_rate_limit=2)
    ws = connect(sim)
    for req_id in (1, 2):
        assert subscribe(ws, ["BTC/USD"], snapshot=False, req_id=req_id)[0]["success"] is True
    send(ws, {"method": "subscribe", "params": {"channel": "trade", "symbol": ["ETH/USD"]}})
    assert recv(ws) == {"Error": "Exceeded msg rate"}
    assert len(sim.subscribe_requests) == 3


def test_connection_without_subscription_is_closed(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(idle_close=0.3, heartbeat_interval=5)
    idle, busy = connect(sim), connect(sim)
    subscribe(busy, ["BTC/USD"], snapshot=False)
    opcode, data = idle.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2]) == 1000
    time.sleep(0.2)
    send(busy, {"method": "ping", "req_id": 1})
    assert recv(busy)["method"] == "pong"
    wait_for(lambda: sim.active_connections == 1)


# --- faults -----------------------------------------------------------------------------


def test_drop_connections_aborts_without_close_frame(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(heartbeat_interval=5)
    ws = connect(sim)
    assert sim.active_connections == 1
    sim.drop_connections()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv_data(control_frame=True)
    assert sim.active_connections == 0
    connect(sim)  # new connections are welcome
    assert sim.connections_total == 2


def test_close_connections_sends_a_close_frame(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(heartbeat_interval=5)
    ws = connect(sim)
    sim.close_connections(code=1012)
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2]) == 1012


def test_silence_sends_nothing_then_resumes_with_a_gap(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(rate=200.0, heartbeat_interval=0.1)
    ws = connect(sim)
    subscribe(ws, ["BTC/USD"], snapshot=False)
    before = trades_of(collect(ws, 0.2))
    sim.silence(1.0)
    silenced_at = time.monotonic()
    before += trades_of(drain(ws, quiet=0.1))  # frames already on the wire
    window = 1.0 - (time.monotonic() - silenced_at) - 0.1
    assert window > 0.5 and collect(ws, window) == []
    after = trades_of(collect(ws, 0.5))
    assert after, "the feed resumes after the silence"
    assert_trades_contiguous(before)
    assert_trades_contiguous(after)
    assert after[0]["trade_id"] - before[-1]["trade_id"] > 50  # missed, never resent
    assert sim.active_connections == 1


def test_outage_refuses_websocket_but_serves_rest(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(rate=100.0, heartbeat_interval=5)
    ws = connect(sim)
    generated = len(sim.market.history("BTC/USD"))
    sim.outage(1.0)
    started = time.monotonic()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv_data(control_frame=True)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(sim.ws_url, timeout=3)
    assert refused.value.status_code == 503
    assert get(sim, "/0/public/Trades?pair=XBTUSD&count=1")[1]["error"] == []
    time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))
    connect(sim)
    assert len(sim.market.history("BTC/USD")) > generated + 10  # trading went on


def test_send_raw_reaches_every_connection(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(heartbeat_interval=5)
    first, second = connect(sim), connect(sim)
    sim.send_raw("not json at all")
    sim.send_raw('{"channel":"martian","data":[1]}')
    sim.send_raw(b"\x00\xffbinary")
    for ws in (first, second):
        assert ws.recv() == "not json at all"
        assert ws.recv() == '{"channel":"martian","data":[1]}'
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b"\x00\xffbinary")


# --- rates and observation --------------------------------------------------------------


def test_flood_up_to_max_trades_with_send_times(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(batch=50, record_send_times=True, heartbeat_interval=5)
    ws = connect(sim)
    subscribe(ws, PAIRS, snapshot=False)
    sim.max_trades = 3000
    sim.set_rate(None)
    wait_for(lambda: sim.trades_generated >= 3000)
    trades = trades_of(drain(ws, quiet=0.3))
    assert len(trades) == 3000 == sim.trades_sent == sim.trades_generated
    assert_trades_contiguous(trades)
    assert len(sim.send_times) == 3000
    assert all(sim.send_times[(t["symbol"], t["trade_id"])] > 0 for t in trades)


def test_high_rate_is_kept(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator(batch=20, heartbeat_interval=5)
    ws = connect(sim)
    subscribe(ws, PAIRS, snapshot=False)
    sim.set_rate(20_000)
    started = time.monotonic()
    time.sleep(0.5)
    sim.set_rate(0)
    elapsed = time.monotonic() - started
    trades = trades_of(drain(ws, quiet=0.3))
    assert 0.5 * 20_000 * 0.5 <= len(trades) <= 20_000 * elapsed * 1.05
    assert_trades_contiguous(trades)


def test_generate_when_idle_false_waits_for_a_client(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(rate=500.0, generate_when_idle=False)
    time.sleep(0.2)
    assert sim.trades_generated == 0
    ws = connect(sim)
    subscribe(ws, ["BTC/USD"], snapshot=False)
    wait_for(lambda: sim.trades_generated > 0)
    idle = simulator(rate=500.0)
    wait_for(lambda: idle.trades_generated > 20)  # the default trades with nobody connected


# --- REST -------------------------------------------------------------------------------


def test_rest_asset_pairs(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    status, body = get(sim, "/0/public/AssetPairs")
    assert status == 200 and body["error"] == []
    assert set(body["result"]) == {"XXBTZUSD", "XETHZUSD", "XDGUSD"}
    btc = body["result"]["XXBTZUSD"]
    assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == (
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    _, some = get(sim, "/0/public/AssetPairs?pair=XBTUSD,ETHUSD")
    assert set(some["result"]) == {"XXBTZUSD", "XETHZUSD"}
    assert get(sim, "/0/public/AssetPairs?pair=FOOBAR") == (
        200,
        {"error": ["EQuery:Unknown asset pair"]},
    )


def test_rest_trades_pages_walk_the_whole_history(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    market = Market(["BTC/USD", "ETH/USD"], seed=2)
    market.seed_history(count_per_pair=2500, span_seconds=3600)
    sim = simulator(market)
    history = market.history("BTC/USD")
    since, seen, pages = history[0].time_ns - 1, [], 0
    while True:
        status, body = get(sim, f"/0/public/Trades?pair=XBTUSD&since={since}")
        assert status == 200 and body["error"] == []
        rows = body["result"]["XXBTZUSD"]
        assert len(rows) <= 1000
        if not rows:
            assert body["result"]["last"] == str(since)  # nothing new: the cursor stays
            break
        pages += 1
        assert body["result"]["last"] == str(
            market.history("BTC/USD")[len(seen) + len(rows) - 1].time_ns
        )
        seen += rows
        since = int(body["result"]["last"])
    assert pages == 3
    assert [row[6] for row in seen] == [t.trade_id for t in history]
    assert seen == [t.to_rest_row() for t in history]
    _, latest = get(sim, "/0/public/Trades?pair=XXBTZUSD&count=5")  # by key, no since
    assert [r[6] for r in latest["result"]["XXBTZUSD"]] == [t.trade_id for t in history[-5:]]
    _, capped = get(sim, "/0/public/Trades?pair=XBTUSD&count=5000")
    assert len(capped["result"]["XXBTZUSD"]) == 1000
    assert get(sim, "/0/public/Trades?pair=FOOBAR") == (
        200,
        {"error": ["EQuery:Unknown asset pair"]},
    )


def test_rest_pages_of_live_trades_never_split_a_timestamp(
    simulator: Callable[..., KrakenSimulator],
) -> None:
    sim = simulator(Market(["BTC/USD"]), rate=None, max_trades=500)
    wait_for(lambda: sim.trades_generated >= 500)
    trades = sim.market.history("BTC/USD")
    assert len({t.to_ws()["timestamp"] for t in trades}) < len(trades)  # shared timestamps
    since, ids = 0, []
    while True:
        result = get(sim, f"/0/public/Trades?pair=XBTUSD&since={since}&count=7")[1]["result"]
        if not result["XXBTZUSD"]:
            break
        ids += [row[6] for row in result["XXBTZUSD"]]
        since = int(result["last"])
    assert ids == [t.trade_id for t in trades]


def test_throttle_rest(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    sim.throttle_rest(2)
    throttled = {"error": ["EGeneral:Too many requests"]}
    assert get(sim, "/0/public/Trades?pair=XBTUSD") == (200, throttled)
    assert get(sim, "/0/public/AssetPairs") == (200, throttled)
    assert get(sim, "/0/public/Trades?pair=XBTUSD&count=1")[1]["error"] == []
    assert sim.rest_calls == [
        "/0/public/Trades?pair=XBTUSD",
        "/0/public/AssetPairs",
        "/0/public/Trades?pair=XBTUSD&count=1",
    ]


def test_corrupt_rest_row_breaks_rest_only(simulator: Callable[..., KrakenSimulator]) -> None:
    market = seeded_market(count_per_pair=80)
    sim = simulator(market)
    history = market.history("BTC/USD")
    broken, custom = history[-10], history[-5]
    sim.corrupt_rest_row("BTC/USD", broken.trade_id)
    sim.corrupt_rest_row("BTC/USD", custom.trade_id, ["1.0", "2.0", 3.0, "b", "m", ""])
    since = history[-20].time_ns
    status, body = get(sim, f"/0/public/Trades?pair=XBTUSD&since={since}")
    assert status == 200 and body["error"] == []
    rows = body["result"]["XXBTZUSD"]
    expected = [t.to_rest_row() for t in history[-19:]]
    expected[9] = ["not-a-price", *broken.to_rest_row()[1:]]  # in place, trade_id kept
    expected[14] = ["1.0", "2.0", 3.0, "b", "m", ""]
    assert rows == expected
    assert body["result"]["last"] == str(history[-1].time_ns)  # the cursor is unaffected
    other = get(sim, f"/0/public/Trades?pair=ETHUSD&since={since}")[1]["result"]["XETHZUSD"]
    assert all(row[0] != "not-a-price" for row in other)  # only that pair's row
    ws = connect(sim)  # the WebSocket sends the trade as it is
    subscribe(ws, ["BTC/USD"], snapshot=True)
    snapshot = recv(ws)["data"]
    assert snapshot == [t.to_ws() for t in market.last("BTC/USD")]
    assert broken.to_ws() in snapshot and custom.to_ws() in snapshot


def get_status(sim: KrakenSimulator, target: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a REST call, error statuses included."""
    try:
        with urllib.request.urlopen(sim.rest_url + target, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_rest_http_status(simulator: Callable[..., KrakenSimulator]) -> None:
    sim = simulator()
    sim.rest_http_status(429, 2, retry_after=0.5)
    for target in ("/0/public/Trades?pair=XBTUSD", "/0/public/AssetPairs"):
        status, headers, body = get_status(sim, target)
        assert (status, headers["Retry-After"], body) == (429, "0.5", b"HTTP 429\n")
        assert headers["Content-Type"] == "text/plain"
    status, headers, body = get_status(sim, "/0/public/Trades?pair=XBTUSD&count=1")
    assert status == 200 and "Retry-After" not in headers
    assert orjson.loads(body)["error"] == []
    sim.rest_http_status(503, 1)
    status, headers, _ = get_status(sim, "/0/public/AssetPairs")
    assert status == 503 and "Retry-After" not in headers
    sim.rest_http_status(425, 1, retry_after=2)
    assert get_status(sim, "/0/public/AssetPairs")[0] == 425
    assert get_status(sim, "/0/public/AssetPairs")[0] == 200
    assert len(sim.rest_calls) == 6  # every call is recorded, failed or not
    with pytest.raises(ValueError):
        sim.rest_http_status(42, 1)


# --- lifecycle and CLI ------------------------------------------------------------------


def test_stop_closes_the_port() -> None:
    with KrakenSimulator(Market(["BTC/USD"]), rate=0) as sim:
        ws = connect(sim)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.recv()
        ws.recv()
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(sim.ws_url, timeout=1)


def test_cli_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "simulator", "--port", "0", "--pairs", "SOL/USD"]
    command += ["--rate", "50", "--history", "10", "--seed", "3", "--fills", "2"]
    command += ["--rest-errors", "1"]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if found := re.search(r"WebSocket (ws://\S+)\s+REST (http://\S+)", line):
                    break
            else:
                pytest.fail("the CLI did not log its URLs")
            ws = connect(found[1])
            subscribe(ws, ["SOL/USD"], snapshot=True)
            assert len(recv(ws)["data"]) >= 10
            with urllib.request.urlopen(found[2] + "/0/public/AssetPairs", timeout=3) as answer:
                assert set(orjson.loads(answer.read())["result"]) == {"SOLUSD"}
            trades = found[2] + "/0/public/Trades?pair=SOLUSD&since=0"
            with urllib.request.urlopen(trades, timeout=3) as answer:  # --rest-errors 1
                assert orjson.loads(answer.read()) == {
                    "error": [next(iter(KRAKEN_ERRORS))],
                    "result": {},
                }
            with urllib.request.urlopen(trades, timeout=3) as answer:
                history = orjson.loads(answer.read())["result"]["SOLUSD"][:10]
            times = [row[2] for row in history]
            assert times[::2] == times[1::2] and len(set(times)) == 5  # --fills 2
            process.send_signal(signal.SIGINT)
            assert process.wait(10) == 0
        finally:
            process.kill()
