"""What a held live trade costs in memory, measured, against the figure the bound uses.

`max_held_mb` bounds the trades held behind repairs at `HELD_TRADE_BYTES` each: if a held trade
cost more than that, the bound would let memory grow past the setting (issue 16, failure 9:
1,000,000 held trades were about 434 MiB on a deployment given 500 MB).
"""

from __future__ import annotations

import gc
import random
import tracemalloc

import orjson

from sources.kraken.feed import HELD_TRADE_BYTES, FeedConfig
from sources.kraken.protocol import TradeBatch, parse_frame
from tests.support.core import Driver, FakeRest, make_feed, trades

COUNT = 20_000


def frames(count: int, exact: bool) -> list[bytes]:
    """Kraken v2 trade frames of 10 trades, with realistic fields."""
    rng = random.Random(7)
    out = []
    for start in range(0, count, 10):
        data = [
            {
                "symbol": "BTC/USD",
                "side": rng.choice(("buy", "sell")),
                "price": round(rng.uniform(60_000, 70_000), 1),
                "qty": round(rng.uniform(0.00001, 3.0), 8),
                "ord_type": rng.choice(("market", "limit")),
                "trade_id": 10_000_000 + start + i,
                "timestamp": f"2026-12-06T23:{(start // 600) % 60:02d}:{(start // 10) % 60:02d}"
                f".{rng.randrange(1_000_000):06d}Z",
            }
            for i in range(10)
        ]
        out.append(orjson.dumps({"channel": "trade", "type": "update", "data": data}))
    return out


def measured_bytes_per_trade(exact: bool) -> float:
    raw = frames(COUNT, exact)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = []
    for frame in raw:
        for event in parse_frame(frame, exact=exact):
            assert isinstance(event, TradeBatch)
            held.extend(event.trades)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(held) == COUNT
    return (after - before) / COUNT


def test_a_held_trade_costs_no_more_than_the_bound_assumes() -> None:
    for exact in (False, True):  # numbers, and decimal_strings (prices keep their text)
        cost = measured_bytes_per_trade(exact)
        print(f"held trade, exact={exact}: {cost:.0f} bytes")
        assert cost <= HELD_TRADE_BYTES, f"{cost:.0f} B a trade > {HELD_TRADE_BYTES}"
        assert cost > HELD_TRADE_BYTES / 2  # the figure is a measurement, not a guess


def test_the_default_bound_fits_the_deployments_memory_with_headroom() -> None:
    """quix.yaml gives the trades deployment 500 MB; the process needs about 170 MB itself."""
    config = FeedConfig(pairs=("BTC/USD",))
    held_mb = config.max_held_total * HELD_TRADE_BYTES / 2**20
    assert held_mb <= 128 and 170 + held_mb < 500 * 0.7


def test_the_feed_holds_no_more_than_max_held_bytes_allows() -> None:
    budget = 1000 * HELD_TRADE_BYTES
    driver = Driver(make_feed(max_held_bytes=budget), FakeRest({"BTC/USD": [], "ETH/USD": []}))
    driver.live(trades(range(1, 11)))
    for start in range(20, 5000, 100):  # a gap, then far more live trades than the bound
        driver.live(trades(range(start, start + 100)))
        assert driver.feed.held() <= 1000
    assert driver.feed.stats.let_go > 0  # let go: REST brings them instead
