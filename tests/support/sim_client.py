"""A client of the Kraken simulator over real loopback sockets, as the component tests drive
it: WebSocket v2 messages in and out, REST answers, and a seeded market to serve."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import orjson
import websocket

from simulator import KrakenSimulator, Market

PAIRS = ["BTC/USD", "ETH/USD", "DOGE/USD"]

_OPEN: list[websocket.WebSocket] = []


def seeded_market(count_per_pair: int = 80, seed: int = 1) -> Market:
    """A market of `PAIRS` with `count_per_pair` trades each over the last ten minutes."""
    market = Market(PAIRS, seed=seed)
    market.seed_history(count_per_pair=count_per_pair, span_seconds=600)
    return market


def connect(sim: KrakenSimulator | str, *, status: bool = True) -> websocket.WebSocket:
    """A connection to the simulator, its status message already read when `status`; closed
    after the test (tests/component/conftest.py)."""
    url = sim if isinstance(sim, str) else sim.ws_url
    ws = websocket.create_connection(url, timeout=3)
    _OPEN.append(ws)
    if status:
        assert recv(ws)["channel"] == "status"
    return ws


def close_clients() -> None:
    """Close every connection `connect` opened (websocket-client keeps them after a close
    frame)."""
    while _OPEN:
        _OPEN.pop().shutdown()


def recv(ws: websocket.WebSocket) -> Any:
    return orjson.loads(ws.recv())


def send(ws: websocket.WebSocket, message: dict[str, Any]) -> None:
    ws.send(orjson.dumps(message).decode())


def subscribe(
    ws: websocket.WebSocket, symbols: list[str], *, snapshot: bool, req_id: int = 1
) -> list[dict[str, Any]]:
    """Subscribe and return the acknowledgements (one per symbol)."""
    params = {"channel": "trade", "symbol": symbols, "snapshot": snapshot}
    send(ws, {"method": "subscribe", "params": params, "req_id": req_id})
    return [recv(ws) for _ in symbols]


def drain(ws: websocket.WebSocket, quiet: float = 0.15) -> list[Any]:
    """Every message until none arrives for `quiet` seconds."""
    messages, timeout = [], ws.gettimeout()
    ws.settimeout(quiet)
    try:
        while True:
            messages.append(recv(ws))
    except websocket.WebSocketTimeoutException:
        return messages
    finally:
        ws.settimeout(timeout)


def collect(ws: websocket.WebSocket, seconds: float) -> list[Any]:
    """Every message received during `seconds`."""
    messages, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ws.settimeout(left)
        try:
            messages.append(recv(ws))
        except websocket.WebSocketTimeoutException:
            break
    ws.settimeout(3)
    return messages


def trades_of(messages: list[Any], kind: str = "update") -> list[dict[str, Any]]:
    """The trades of the `kind` (update or snapshot) trade messages among `messages`."""
    return [
        trade
        for m in messages
        if isinstance(m, dict) and m.get("channel") == "trade" and m.get("type") == kind
        for trade in m["data"]
    ]


def assert_trades_contiguous(
    trades: list[dict[str, Any]], after: dict[str, int] | None = None
) -> None:
    """trade_id rises by exactly one per symbol (from `after[symbol]` when given)."""
    last = dict(after or {})
    for trade in trades:
        symbol = trade["symbol"]
        if symbol in last:
            assert trade["trade_id"] == last[symbol] + 1, (symbol, trade, last[symbol])
        last[symbol] = trade["trade_id"]


def get(sim: KrakenSimulator, target: str) -> tuple[int, Any]:
    """(HTTP status, JSON body) of `GET <the simulator's REST URL><target>`."""
    with urllib.request.urlopen(sim.rest_url + target, timeout=5) as answer:
        return answer.status, orjson.loads(answer.read())
