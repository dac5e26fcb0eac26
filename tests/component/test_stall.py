"""The simulator's `stall_pair` fault: one pair's subscription goes silent, nothing else does.

What Kraken v2 is known to do: the connection stays up (heartbeats, other pairs), the market
and REST go on, only the acknowledged pair's trades stop reaching the socket. A fresh
subscribe of the pair brings its snapshot and its trades back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from simulator import KrakenSimulator
from simulator.market import pair_info
from tests.support.sim_client import (
    assert_trades_contiguous,
    collect,
    connect,
    drain,
    get,
    seeded_market,
    send,
    subscribe,
    trades_of,
)


@pytest.fixture
def sim() -> Iterator[KrakenSimulator]:
    with KrakenSimulator(seeded_market(), rate=300.0, heartbeat_interval=0.2) as started:
        yield started


def symbols_of(trades: list[dict]) -> set[str]:
    return {t["symbol"] for t in trades}


def stalled_connection(sim: KrakenSimulator) -> tuple[websocket.WebSocket, list[dict]]:
    """A connection subscribed to BTC/USD and ETH/USD whose BTC/USD is then stalled; returns
    it and the trades it got before (frames already on the wire included)."""
    ws = connect(sim)
    subscribe(ws, ["BTC/USD", "ETH/USD"], snapshot=False)
    before = trades_of(collect(ws, 0.3))
    sim.stall_pair("BTC/USD")
    before += trades_of(collect(ws, 0.2))  # frames already on the wire (ETH/USD goes on)
    assert {"BTC/USD", "ETH/USD"} <= symbols_of(before)
    return ws, before


def test_a_stalled_pair_stops_while_other_pairs_heartbeats_and_rest_go_on(
    sim: KrakenSimulator,
) -> None:
    only_btc = connect(sim)
    subscribe(only_btc, ["BTC/USD"], snapshot=False)
    ws, before = stalled_connection(sim)
    drain(only_btc, quiet=0.05)
    during = trades_of(collect(ws, 1.0))
    assert symbols_of(during) == {"ETH/USD"}  # the other pair flows on
    assert_trades_contiguous(before + during)
    beats = collect(only_btc, 0.7)  # a connection holding only the stalled pair: heartbeats
    assert beats and all(m == {"channel": "heartbeat"} for m in beats)
    last_seen = max(t["trade_id"] for t in before if t["symbol"] == "BTC/USD")
    market_last = sim.market.last("BTC/USD", 1)[0].trade_id
    assert market_last > last_seen + 50  # the market went on trading it
    status, answer = get(sim, f"/0/public/Trades?pair={pair_info('BTC/USD').altname}&count=1000")
    assert status == 200 and not answer["error"]
    served = [row[6] for row in answer["result"][pair_info("BTC/USD").key]]
    assert served[-1] >= market_last and last_seen + 1 in served  # REST has the missed ones
    assert sim.active_connections == 2


def test_unsubscribe_and_subscribe_again_restores_the_pair_with_its_snapshot(
    sim: KrakenSimulator,
) -> None:
    ws, before = stalled_connection(sim)
    collect(ws, 0.5)
    params = {"channel": "trade", "symbol": ["BTC/USD"]}
    send(ws, {"method": "unsubscribe", "params": params, "req_id": 5})
    send(ws, {"method": "subscribe", "params": {**params, "snapshot": True}, "req_id": 5})
    messages = collect(ws, 0.6)
    acks = [(m["method"], m["success"]) for m in messages if m.get("req_id") == 5]
    assert acks == [("unsubscribe", True), ("subscribe", True)]
    snapshot = trades_of(messages, "snapshot")
    assert len(snapshot) == 50 and symbols_of(snapshot) == {"BTC/USD"}
    last_seen = max(t["trade_id"] for t in before if t["symbol"] == "BTC/USD")
    assert snapshot[0]["trade_id"] > last_seen + 1  # it shows the trades missed meanwhile
    assert_trades_contiguous(snapshot)
    updates = [t for t in trades_of(messages) if t["symbol"] == "BTC/USD"]
    assert updates and updates[0]["trade_id"] == snapshot[-1]["trade_id"] + 1
    assert_trades_contiguous(snapshot + updates)


def test_a_new_subscription_is_not_stalled_and_unstall_resumes_the_old_one(
    sim: KrakenSimulator,
) -> None:
    ws, before = stalled_connection(sim)
    fresh = connect(sim)
    subscribe(fresh, ["BTC/USD"], snapshot=False)
    assert symbols_of(trades_of(collect(fresh, 0.4))) == {"BTC/USD"}
    assert "BTC/USD" not in symbols_of(trades_of(collect(ws, 0.1)))
    sim.unstall_pair("BTC/USD")
    after = [t for t in trades_of(collect(ws, 0.4)) if t["symbol"] == "BTC/USD"]
    assert after, "the old subscription gets the pair's trades again"
    assert_trades_contiguous(after)
    last_seen = max(t["trade_id"] for t in before if t["symbol"] == "BTC/USD")
    assert after[0]["trade_id"] > last_seen + 50  # missed meanwhile, never resent
