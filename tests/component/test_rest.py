"""The REST client and the backfill worker against the simulator's real HTTP endpoints."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from simulator import KrakenSimulator, Market
from sources.kraken.backfill import BackfillDone, BackfillJob, BackfillPage, BackfillWorker
from sources.kraken.rest import KrakenRest, RestError, rest_row_to_trade, v2_symbol
from sources.kraken.trade import Trade


@pytest.fixture(scope="module")
def market() -> Market:
    market = Market(["BTC/USD", "ETH/USD", "DOGE/USD"], seed=3)
    market.seed_history(count_per_pair=2500, span_seconds=3600)
    return market


@pytest.fixture
def kraken(market: Market) -> Iterator[KrakenSimulator]:
    with KrakenSimulator(market, rate=0) as sim:
        yield sim


def rest(sim: KrakenSimulator) -> KrakenRest:
    return KrakenRest(sim.rest_url, min_interval=0.01, max_backoff=0.2)


def test_v2_symbols_from_rest_wsnames() -> None:
    assert v2_symbol("XBT/USD") == "BTC/USD"
    assert v2_symbol("XDG/USD") == "DOGE/USD"
    assert v2_symbol("ETH/EUR") == "ETH/EUR"


def test_rest_row_gives_the_same_trade_as_the_websocket(market: Market) -> None:
    for sim_trade in market.history("BTC/USD")[:50]:
        from_rest = rest_row_to_trade("BTC/USD", sim_trade.to_rest_row())
        assert from_rest == Trade.from_kraken(sim_trade.to_ws())


def test_asset_pairs_map_v2_symbols_to_rest_names(kraken: KrakenSimulator) -> None:
    client = rest(kraken)
    assert client.rest_pair("BTC/USD") == ("XBTUSD", "XXBTZUSD")
    assert client.rest_pair("DOGE/USD") == ("XDGUSD", "XDGUSD")
    with pytest.raises(RestError, match="no pair for FOO/BAR"):
        client.rest_pair("FOO/BAR")
    assert client.calls == 1  # AssetPairs is asked once, then cached


def test_pages_walk_the_whole_history_contiguously(kraken: KrakenSimulator, market: Market) -> None:
    client = rest(kraken)
    history = market.history("ETH/USD")
    since, seen = history[0].time_ns - 1, []
    while True:
        page = client.trades("ETH/USD", since)
        seen += [t.trade_id for t in page.trades]
        if len(page.trades) < 1000:
            break
        since = page.last_ns
    assert seen == [t.trade_id for t in history]


def test_throttling_is_retried_until_it_passes(kraken: KrakenSimulator, market: Market) -> None:
    client = rest(kraken)
    client.rest_pair("BTC/USD")
    kraken.throttle_rest(3)
    page = client.trades("BTC/USD", market.history("BTC/USD")[0].time_ns - 1)
    assert len(page.trades) == 1000
    assert client.retries == 3


def test_backfill_worker_fetches_a_gap_in_order(kraken: KrakenSimulator, market: Market) -> None:
    history = market.history("BTC/USD")
    results: queue.Queue = queue.Queue()
    worker = BackfillWorker(rest(kraken), results)
    worker.start()
    try:
        start, end = history[100], history[1800]
        kraken.throttle_rest(2)
        worker.submit(BackfillJob("BTC/USD", start.time_ns - 1, end.trade_id, reason="test"))
        fetched: list[int] = []
        while True:
            result = results.get(timeout=20)
            if isinstance(result, BackfillDone):
                break
            assert isinstance(result, BackfillPage)
            fetched += [t.trade_id for t in result.page.trades]
    finally:
        worker.stop()
    assert result.complete
    assert fetched[0] <= start.trade_id and fetched[-1] >= end.trade_id
    assert fetched == list(range(fetched[0], fetched[-1] + 1))
