"""The Kraken simulator speaks the documented protocol (checked with a plain client)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import websocket

from simulator import KrakenSimulator, Market

PAIRS = ["BTC/USD", "ETH/USD"]


@pytest.fixture
def market() -> Market:
    market = Market(PAIRS, seed=2)
    market.seed_history(count_per_pair=80, span_seconds=60)
    return market


@pytest.fixture
def sim(market: Market) -> Iterator[KrakenSimulator]:
    with KrakenSimulator(market, rate=40.0, batch=4, heartbeat_interval=0.3) as server:
        yield server


def connect(sim: KrakenSimulator, symbols: list[str] = PAIRS, snapshot: bool = True):
    ws = websocket.create_connection(sim.ws_url, timeout=2)
    status = orjson.loads(ws.recv())
    ws.settimeout(0.1)  # so `receive` keeps to its window
    request = {"channel": "trade", "symbol": symbols, "snapshot": snapshot}
    ws.send(orjson.dumps({"method": "subscribe", "params": request, "req_id": 7}).decode())
    return ws, status


def receive(ws: websocket.WebSocket, seconds: float) -> list[dict]:
    messages, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            messages.append(orjson.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            continue
    return messages


def receive_raw(ws: websocket.WebSocket, seconds: float) -> list[str | bytes]:
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frames.append(ws.recv())
        except websocket.WebSocketTimeoutException:
            continue
    return frames


def test_status_acks_snapshot_and_updates(sim: KrakenSimulator) -> None:
    ws, status = connect(sim, [*PAIRS, "FOO/BAR"])
    assert status["channel"] == "status" and status["data"][0]["system"] == "online"
    assert isinstance(status["data"][0]["connection_id"], int)
    messages = receive(ws, 1.5)
    acks = [m for m in messages if m.get("method") == "subscribe"]
    assert [(a["success"], a.get("result", {}).get("symbol", a.get("symbol"))) for a in acks] == [
        (True, "BTC/USD"),
        (True, "ETH/USD"),
        (False, "FOO/BAR"),
    ]
    assert acks[2]["error"] == "Currency pair not supported FOO/BAR" and acks[2]["req_id"] == 7
    trades = [m for m in messages if m.get("channel") == "trade"]
    snapshots = [m for m in trades if m["type"] == "snapshot"]
    assert len(snapshots) == 2 and all(len(m["data"]) == 50 for m in snapshots)
    by_pair: dict[str, list[int]] = {p: [] for p in PAIRS}
    for message in trades:
        assert len({t["symbol"] for t in message["data"]}) >= 1
        for trade in message["data"]:
            by_pair[trade["symbol"]].append(trade["trade_id"])
    for ids in by_pair.values():  # snapshot then updates: +1 per trade, no hole
        assert ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) > 55
    ws.close()


def test_heartbeat_when_quiet_and_ping_pong(sim: KrakenSimulator) -> None:
    sim.pause_trades(True)
    ws, _ = connect(sim, snapshot=False)
    ws.send('{"method":"ping","req_id":101}')
    messages = receive(ws, 1.2)
    assert {"channel": "heartbeat"} in messages
    pong = next(m for m in messages if m.get("method") == "pong")
    assert pong["req_id"] == 101 and "time_in" in pong and "time_out" in pong
    assert not [m for m in messages if m.get("channel") == "trade"]
    ws.close()


def test_faults_drop_silence_garbage_and_outage(sim: KrakenSimulator) -> None:
    ws, _ = connect(sim, snapshot=False)
    receive(ws, 0.3)
    sim.send_raw(b"\x00garbage")
    frames = receive_raw(ws, 0.5)
    assert b"\x00garbage" in frames  # delivered as sent, between the trades
    sim.silence(1.5)
    receive(ws, 0.2)  # frames already on the way
    assert receive(ws, 1.0) == []
    sim.drop_connections()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        receive(ws, 1.0)
    sim.outage(1.0)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(sim.ws_url, timeout=2)
    time.sleep(1.1)
    ws, status = connect(sim)
    assert status["channel"] == "status"
    assert sim.connections_total == 2
    ws.close()


def test_rest_asset_pairs_and_trades_formats(sim: KrakenSimulator, market: Market) -> None:
    with urllib.request.urlopen(f"{sim.rest_url}/0/public/AssetPairs") as response:
        pairs = orjson.loads(response.read())
    assert pairs["error"] == []
    assert pairs["result"]["XXBTZUSD"]["wsname"] == "XBT/USD"
    since = market.history("BTC/USD")[10].time_ns
    url = f"{sim.rest_url}/0/public/Trades?pair=XBTUSD&since={since}&count=5"
    with urllib.request.urlopen(url) as response:
        body = orjson.loads(response.read())
    rows = body["result"]["XXBTZUSD"]
    assert len(rows) == 5 and body["result"]["last"] == str(market.history("BTC/USD")[15].time_ns)
    price, volume, seconds, side, kind, misc, trade_id = rows[0]
    assert isinstance(price, str) and isinstance(volume, str) and isinstance(seconds, float)
    assert (
        side in "bs"
        and kind in "ml"
        and misc == ""
        and trade_id == market.history("BTC/USD")[11].trade_id
    )
    sim.throttle_rest(1)
    with urllib.request.urlopen(url) as response:
        assert orjson.loads(response.read()) == {"error": ["EGeneral:Too many requests"]}
    with urllib.request.urlopen(f"{sim.rest_url}/0/public/Trades?pair=FOOBAR") as response:
        assert orjson.loads(response.read()) == {"error": ["EQuery:Unknown asset pair"]}
