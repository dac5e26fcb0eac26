"""The REST client and the page fetcher against the simulator's real HTTP endpoints."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from simulator import KrakenSimulator, Market
from sources.kraken.feed import RestFailure
from sources.kraken.fetcher import PageFetcher, PageRequest, PageResult
from sources.kraken.rest import KrakenRest, NotKraken, RestError, Stopped, UnknownPair
from sources.kraken.rows import TradesPage, rest_row_to_trade, v2_symbol
from sources.kraken.trade import Trade

pytestmark = [
    pytest.mark.market(
        ["BTC/USD", "ETH/USD", "DOGE/USD"],
        seed=3,
        seed_history={"count_per_pair": 2500, "span_seconds": 3600},
    ),
    pytest.mark.kraken(rate=0),
]


def rest(sim: KrakenSimulator | str, **options: float | int | None) -> KrakenRest:
    url = sim if isinstance(sim, str) else sim.rest_url
    options.setdefault("min_interval", 0.01)
    options.setdefault("max_backoff", 0.2)
    return KrakenRest(url, **options)  # type: ignore[arg-type]


@pytest.fixture
def fetchers() -> Iterator[list[PageFetcher]]:
    """Fetchers the test started, stopped after it."""
    started: list[PageFetcher] = []
    yield started
    for fetcher in started:
        fetcher.stop()


def start(fetchers: list[PageFetcher], client: KrakenRest) -> PageFetcher:
    fetcher = PageFetcher(client).start()
    fetchers.append(fetcher)
    return fetcher


def next_result(fetcher: PageFetcher, timeout: float = 10.0) -> PageResult:
    """The one result of the outstanding request, waiting for it as an idle loop would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fetcher.wait(0.2)
        results = fetcher.results()
        if results:
            assert len(results) == 1, results
            return results[0]
    raise AssertionError("no page result in time")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A real HTTP port that accepts connections and never answers: a hung Kraken."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    closing.set()
    server.close()
    for conn in held:
        conn.close()


# --- the client -------------------------------------------------------------------------


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


def test_a_pair_missing_from_asset_pairs_is_a_permanent_unknown_pair(
    kraken: KrakenSimulator,
) -> None:
    client = rest(kraken)
    with pytest.raises(UnknownPair) as unknown:
        client.trades("FOO/BAR", 0)
    assert unknown.value.permanent and unknown.value.symbol == "FOO/BAR"
    assert kraken.rest_calls == ["/0/public/AssetPairs"]  # no Trades call for it


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
    assert (client.calls, client.calls_ok, client.calls_failed, client.retries) == (4, 4, 0, 0)


def test_throttling_is_retried_until_it_passes(kraken: KrakenSimulator, market: Market) -> None:
    client = rest(kraken)
    client.rest_pair("BTC/USD")
    kraken.throttle_rest(3)
    page = client.trades("BTC/USD", market.history("BTC/USD")[0].time_ns - 1)
    assert len(page.trades) == 1000
    assert client.retries == 3
    assert (client.calls_ok, client.calls_throttled, client.calls_failed) == (2, 3, 0)


def test_a_bad_row_mid_page_costs_that_row_only(kraken: KrakenSimulator, market: Market) -> None:
    history = market.history("BTC/USD")
    bad = history[500]
    kraken.corrupt_rest_row("BTC/USD", bad.trade_id)
    client = rest(kraken)
    page = client.trades("BTC/USD", history[0].time_ns - 1)
    assert isinstance(page, TradesPage)
    assert [t.trade_id for t in page.trades] == [t.trade_id for t in history[:1000] if t is not bad]
    assert page.last_ns == history[999].time_ns  # Kraken's cursor, as if nothing happened
    assert [b.trade_id for b in page.bad_rows] == [bad.trade_id]
    assert "price" in page.bad_rows[0].reason and "not-a-price" in page.bad_rows[0].excerpt
    assert client.rows_bad == 1


@pytest.mark.parametrize("status", [429, 408, 425, 503])
def test_http_throttling_and_timeouts_are_retried(
    kraken: KrakenSimulator, market: Market, status: int
) -> None:
    client = rest(kraken)
    client.rest_pair("BTC/USD")
    kraken.rest_http_status(status, 2)
    page = client.trades("BTC/USD", market.history("BTC/USD")[0].time_ns - 1)
    assert len(page.trades) == 1000 and client.retries == 2
    throttled = 2 if status == 429 else 0
    assert (client.calls_throttled, client.calls_failed) == (throttled, 2 - throttled)


def test_retry_after_is_honoured_and_capped(kraken: KrakenSimulator, market: Market) -> None:
    since = market.history("BTC/USD")[0].time_ns - 1
    client = rest(kraken, max_backoff=5.0)
    client.rest_pair("BTC/USD")
    kraken.rest_http_status(429, 2, retry_after=0.4)
    started = time.monotonic()
    assert len(client.trades("BTC/USD", since).trades) == 1000
    assert 0.8 <= time.monotonic() - started < 3.0  # twice the server's 0.4 s
    capped = rest(kraken, max_backoff=0.05)
    capped.rest_pair("BTC/USD")
    kraken.rest_http_status(429, 2, retry_after=30)
    started = time.monotonic()
    assert len(capped.trades("BTC/USD", since).trades) == 1000
    assert time.monotonic() - started < 1.0  # max_backoff caps it
    assert capped.calls_throttled == 2


def test_any_http_status_or_kraken_error_is_retried_as_a_delay(kraken: KrakenSimulator) -> None:
    """Issue 16, failure 1: 403, `EGeneral:Internal error` or `EGeneral:Temporary lockout`
    used to be final, and a whole gap became a hole on one answer."""
    client = rest(kraken, max_backoff=0.2, min_interval=0.0)
    client.rest_pair("BTC/USD")
    kraken.rest_http_status(403, 1)
    kraken.rest_errors(["EGeneral:Internal error", "EGeneral:Temporary lockout", "EFoo:New"], 3)
    page = client.trades("BTC/USD", 0)
    assert page.trades and client.retries == 4 and client.calls_failed == 4


def test_one_attempt_reports_what_kraken_said_and_keeps_its_wait(kraken: KrakenSimulator) -> None:
    client = rest(kraken, max_attempts=1, min_interval=0.0, max_backoff=5.0)
    client.rest_pair("BTC/USD")
    kraken.rest_errors(["EService:Unavailable"], 1)
    with pytest.raises(RestError, match="EService:Unavailable") as failed:
        client.trades("BTC/USD", 0)
    assert not failed.value.permanent
    started = time.monotonic()
    assert client.trades("BTC/USD", 0).trades  # the next call waits for the backoff first
    assert time.monotonic() - started >= 0.0


def test_a_url_that_is_not_kraken_is_said_at_once(kraken: KrakenSimulator) -> None:
    kraken.rest_not_kraken(404)
    client = rest(kraken)
    with pytest.raises(NotKraken, match="not Kraken's REST API") as failed:
        client.trades("BTC/USD", 0)
    assert failed.value.permanent and client.calls == 1
    kraken.rest_not_kraken(200)  # an HTML page with 200: not Kraken either
    with pytest.raises(NotKraken):
        rest(kraken).rest_pair("BTC/USD")


def test_a_404_from_a_url_that_answered_as_kraken_is_a_passing_fault(
    kraken: KrakenSimulator,
) -> None:
    client = rest(kraken, max_backoff=0.2, min_interval=0.0)
    client.rest_pair("BTC/USD")  # Kraken answered once
    kraken.rest_http_status(404, 2)
    assert client.trades("BTC/USD", 0).trades and client.retries == 2


def test_max_attempts_gives_up_for_now(kraken: KrakenSimulator) -> None:
    client = rest(kraken, max_attempts=3)
    client.rest_pair("BTC/USD")
    kraken.throttle_rest(10)
    with pytest.raises(RestError, match="gave up after 3 attempts") as failed:
        client.trades("BTC/USD", 0)
    assert not failed.value.permanent and client.calls_throttled == 3


def test_should_continue_stops_a_retry_wait_promptly(kraken: KrakenSimulator) -> None:
    stopping = threading.Event()
    client = rest(kraken, max_backoff=60.0)
    client.should_continue = lambda: not stopping.is_set()
    client.rest_pair("BTC/USD")
    kraken.rest_http_status(503, 1, retry_after=30)
    threading.Timer(0.3, stopping.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        client.trades("BTC/USD", 0)
    assert time.monotonic() - started < 1.0  # not 30 s


# --- the page fetcher -------------------------------------------------------------------


def test_fetcher_pages_arrive_in_order(
    kraken: KrakenSimulator, market: Market, fetchers: list[PageFetcher]
) -> None:
    fetcher = start(fetchers, rest(kraken))
    history = market.history("DOGE/USD")
    since, seen, request_id = history[0].time_ns - 1, [], 0
    kraken.throttle_rest(2)
    while True:
        request_id += 1
        fetcher.submit(PageRequest(request_id, "DOGE/USD", since, count=700))
        assert fetcher.busy()
        with pytest.raises(RuntimeError, match="outstanding"):
            fetcher.submit(PageRequest(99, "BTC/USD", 0))
        result = next_result(fetcher)
        assert not fetcher.busy()
        assert result.ok and (result.request_id, result.pair) == (request_id, "DOGE/USD")
        if not result.trades:
            assert result.last_ns == since
            break
        seen += [t.trade_id for t in result.trades]
        assert result.last_ns == history[len(seen) - 1].time_ns
        since = result.last_ns
    assert seen == [t.trade_id for t in history]
    assert request_id == 5 and fetcher.pages_ok == 5 and fetcher.results() == []


def test_fetcher_reports_a_bad_row_and_delivers_the_rest_of_the_page(
    kraken: KrakenSimulator,
    market: Market,
    fetchers: list[PageFetcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = market.history("ETH/USD")
    bad = history[10]
    kraken.corrupt_rest_row("ETH/USD", bad.trade_id, ["1.0", "2.0", 3.0, "b", "m", ""])
    fetcher = start(fetchers, rest(kraken))
    fetcher.submit(PageRequest(1, "ETH/USD", history[0].time_ns - 1, count=50))
    result = next_result(fetcher)
    assert result.ok and len(result.trades) == 49
    assert [t.trade_id for t in result.trades] == [t.trade_id for t in history[:50] if t is not bad]
    assert result.last_ns == history[49].time_ns
    assert len(result.bad_rows) == 1 and result.bad_rows[0].trade_id is None  # 6 fields
    kraken.corrupt_rest_row("ETH/USD", history[60].trade_id)  # the default: a bad price
    caplog.clear()
    fetcher.submit(PageRequest(2, "ETH/USD", result.last_ns, count=50))
    result = next_result(fetcher)
    assert [b.trade_id for b in result.bad_rows] == [history[60].trade_id]
    assert len(result.trades) == 49 and result.last_ns == history[99].time_ns
    warnings = [r for r in caplog.records if "unreadable trade row" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING  # the core decides
    assert "ETH/USD" in warnings[0].getMessage()
    assert f"trade_id {history[60].trade_id}" in warnings[0].getMessage()
    assert fetcher.rows_bad == 2 and fetcher.rest.rows_bad == 2


def test_fetcher_retries_429_with_retry_after(
    kraken: KrakenSimulator, market: Market, fetchers: list[PageFetcher]
) -> None:
    client = rest(kraken, max_backoff=5.0)
    fetcher = start(fetchers, client)
    kraken.rest_http_status(429, 2, retry_after=0.3)
    started = time.monotonic()
    fetcher.submit(PageRequest(7, "BTC/USD", market.history("BTC/USD")[0].time_ns - 1))
    result = next_result(fetcher)
    assert result.ok and len(result.trades) == 1000
    assert time.monotonic() - started >= 0.6
    assert (client.calls_throttled, client.calls_ok) == (2, 2)  # AssetPairs, then Trades


def test_fetcher_unknown_pair_is_a_permanent_error(
    kraken: KrakenSimulator, fetchers: list[PageFetcher], caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = start(fetchers, rest(kraken))
    fetcher.submit(PageRequest(3, "FOO/BAR", 1234))
    result = next_result(fetcher)
    assert result.error and "FOO/BAR" in result.error
    assert result.failure is RestFailure.UNKNOWN_PAIR
    assert (result.trades, result.last_ns, result.bad_rows) == ((), 1234, ())
    assert any(r.levelno == logging.ERROR and "FOO/BAR" in r.getMessage() for r in caplog.records)
    fetcher.submit(PageRequest(4, "BTC/USD", 0, count=3))  # the thread goes on
    assert next_result(fetcher).ok and fetcher.pages_failed == 1


def test_fetcher_gives_up_for_now_when_retries_run_out(
    kraken: KrakenSimulator, fetchers: list[PageFetcher]
) -> None:
    fetcher = start(fetchers, rest(kraken, max_attempts=2))
    kraken.rest_http_status(503, 2)
    fetcher.submit(PageRequest(1, "BTC/USD", 0, count=3))
    result = next_result(fetcher)
    assert result.error and "HTTP 503" in result.error and result.failure is RestFailure.PASSING


def test_fetcher_cancel_during_a_retry_wait_is_prompt(
    kraken: KrakenSimulator, market: Market, fetchers: list[PageFetcher]
) -> None:
    client = rest(kraken, max_backoff=60.0)
    client.rest_pair("BTC/USD")
    fetcher = start(fetchers, client)
    kraken.rest_http_status(429, 1, retry_after=1.0)
    fetcher.submit(PageRequest(1, "BTC/USD", 0))
    deadline = time.monotonic() + 5
    while client.calls_throttled == 0:  # now waiting to retry
        assert time.monotonic() < deadline
        time.sleep(0.01)
    throttled_at = time.monotonic()
    fetcher.cancel()
    assert not fetcher.busy()
    while fetcher._running is not None:  # the thread lets go of the request at once
        assert time.monotonic() - throttled_at < 0.5
        time.sleep(0.005)
    history = market.history("ETH/USD")
    fetcher.submit(PageRequest(2, "ETH/USD", history[0].time_ns - 1, 5))
    result = next_result(fetcher)
    # Kraken's Retry-After holds for the client, whichever request comes next
    assert 0.9 <= time.monotonic() - throttled_at < 2.5
    assert result.request_id == 2
    assert [t.trade_id for t in result.trades] == [t.trade_id for t in history[:5]]
    assert [c.split("?")[1].split("&")[0] for c in kraken.rest_calls[1:]] == [
        "pair=XBTUSD",  # throttled, never asked again
        "pair=ETHUSD",
    ]
    time.sleep(0.1)
    assert fetcher.results() == []


def test_fetcher_cancel_and_stop_cut_a_hung_http_call_short(
    silent_server: str, fetchers: list[PageFetcher]
) -> None:
    client = rest(silent_server, timeout=30.0)
    fetcher = start(fetchers, client)
    fetcher.submit(PageRequest(1, "BTC/USD", 0))
    time.sleep(0.3)  # the call is blocked reading an answer that never comes
    assert fetcher.busy()
    fetcher.cancel()
    assert not fetcher.busy()
    fetcher.submit(PageRequest(2, "BTC/USD", 0))  # hangs the same way
    time.sleep(0.3)
    started = time.monotonic()
    fetcher.stop()
    assert time.monotonic() - started < 1.0
    assert fetcher._thread is not None and not fetcher._thread.is_alive()
    assert client._client is None  # closed
    assert fetcher.results() == [] and client.calls == 0  # cut short: not counted


def test_fetcher_stop_during_a_retry_wait_is_prompt(
    kraken: KrakenSimulator, fetchers: list[PageFetcher]
) -> None:
    client = rest(kraken, max_backoff=60.0)
    fetcher = start(fetchers, client)
    kraken.rest_http_status(503, 1, retry_after=30)
    fetcher.submit(PageRequest(1, "BTC/USD", 0))
    time.sleep(0.3)
    started = time.monotonic()
    fetcher.stop()
    assert time.monotonic() - started < 1.0
    assert fetcher._thread is not None and not fetcher._thread.is_alive()
    assert client._client is None
    with pytest.raises(RuntimeError, match="not running"):
        fetcher.submit(PageRequest(2, "BTC/USD", 0))


class _Exploding(KrakenRest):
    """A client with a bug: its first `trades` call raises."""

    exploded = False

    def trades(self, symbol: str, since_ns: int, count: int = 1000) -> TradesPage:
        if not self.exploded:
            self.exploded = True
            raise ZeroDivisionError("a bug in the client")
        return super().trades(symbol, since_ns, count)


def test_an_exception_in_the_client_does_not_kill_the_thread(
    kraken: KrakenSimulator,
    market: Market,
    fetchers: list[PageFetcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetcher = start(fetchers, _Exploding(kraken.rest_url, min_interval=0.01))
    fetcher.submit(PageRequest(1, "BTC/USD", 0))
    result = next_result(fetcher)
    assert (
        result.error == "ZeroDivisionError: a bug in the client"
        and result.failure is RestFailure.PASSING
    )
    logged = [r for r in caplog.records if r.exc_info and r.levelno == logging.ERROR]
    assert len(logged) == 1  # with its traceback, once
    assert fetcher._thread is not None and fetcher._thread.is_alive()
    fetcher.submit(PageRequest(2, "BTC/USD", market.history("BTC/USD")[0].time_ns - 1, 10))
    result = next_result(fetcher)
    assert result.ok and len(result.trades) == 10
