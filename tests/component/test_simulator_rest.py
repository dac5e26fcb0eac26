"""The simulator's REST misbehaving as Kraken's does, seen through raw HTTP calls: Kraken's
error answers, downtimes, a REST lagging the socket, broken rows at the edges of full pages,
trades sharing one time across a page boundary, and a URL that is not Kraken."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest

from simulator import KrakenSimulator, Market
from simulator.rest import KRAKEN_ERRORS

TRADES = "/0/public/Trades"
ASSET_PAIRS = "/0/public/AssetPairs"


@contextmanager
def serving(market: Market) -> Iterator[tuple[KrakenSimulator, httpx.Client]]:
    """A started simulator of `market` (no live trades) and an HTTP client of its REST API."""
    with (
        KrakenSimulator(market, rate=0) as sim,
        httpx.Client(base_url=sim.rest_url, timeout=5) as client,
    ):
        yield sim, client


def history_market(count: int = 100, *, span: float = 600, fills: int = 1) -> Market:
    market = Market(["BTC/USD", "ETH/USD"], seed=3, fills=fills)
    market.seed_history(count, span_seconds=span)
    return market


def trades(client: httpx.Client, since: int | None = None, count: int | None = None) -> Any:
    """The JSON answer of `Trades` for BTC/USD (asked by its REST name, as a client would)."""
    params: dict[str, Any] = {"pair": "XBTUSD"}
    if since is not None:
        params["since"] = since
    if count is not None:
        params["count"] = count
    answer = client.get(TRADES, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


def rows_and_last(body: Any) -> tuple[list[list[Any]], int]:
    assert body["error"] == []
    return body["result"]["XXBTZUSD"], int(body["result"]["last"])


# --- Kraken's error answers -------------------------------------------------------------


def test_documented_errors_are_kraken_strings() -> None:
    assert len(KRAKEN_ERRORS) >= 10
    for error, meaning in KRAKEN_ERRORS.items():
        assert re.fullmatch(r"E(General|API|Query|Service):[A-Z][\w ]+", error), error
        assert meaning
    for needed in ("EGeneral:Internal error", "EGeneral:Temporary lockout", "EService:Busy"):
        assert needed in KRAKEN_ERRORS


def test_rest_errors_answer_each_error_in_turn_then_end() -> None:
    with serving(history_market()) as (sim, client):
        made_up = "EFuture:Something Kraken adds later"
        sim.rest_errors(["EGeneral:Internal error", made_up], 3)
        assert client.get(ASSET_PAIRS).json()["error"] == []  # another endpoint: unaffected
        answers = [trades(client) for _ in range(4)]
        assert answers[:3] == [
            {"error": ["EGeneral:Internal error"], "result": {}},
            {"error": [made_up], "result": {}},
            {"error": ["EGeneral:Internal error"], "result": {}},
        ]
        assert len(rows_and_last(answers[3])[0]) == 100  # then Kraken serves again

        sim.rest_errors(["EService:Busy"], 2, endpoint=None)  # any endpoint
        assert client.get(ASSET_PAIRS).json() == {"error": ["EService:Busy"], "result": {}}
        assert trades(client)["error"] == ["EService:Busy"]
        assert client.get(ASSET_PAIRS).json()["error"] == []

        sim.rest_errors(["EService:Unavailable"], 5, endpoint="AssetPairs")
        sim.rest_errors(["EService:Unavailable"], 0, endpoint="AssetPairs")  # called off
        assert client.get(ASSET_PAIRS).json()["error"] == []
        with pytest.raises(ValueError):
            sim.rest_errors([], 1)


def test_every_documented_error_can_be_served() -> None:
    with serving(history_market()) as (sim, client):
        sim.rest_errors(list(KRAKEN_ERRORS), len(KRAKEN_ERRORS))
        served = [trades(client, since=0)["error"] for _ in KRAKEN_ERRORS]
        assert served == [[error] for error in KRAKEN_ERRORS]
        assert rows_and_last(trades(client, since=0))[0]


# --- HTTP statuses for a while ----------------------------------------------------------


def test_rest_down_answers_a_status_for_a_while_then_kraken_again() -> None:
    seconds = 0.6
    with serving(history_market()) as (sim, client):
        asked = time.monotonic()
        sim.rest_down(seconds, 503, retry_after=2)
        set_at = time.monotonic()  # REST is back between asked + seconds and set_at + seconds
        failed = 0
        while True:
            sent = time.monotonic()
            answer = client.get(TRADES + "?pair=XBTUSD" if failed % 2 else ASSET_PAIRS)
            if answer.status_code == 200:
                break
            assert sent < set_at + seconds  # an error only while down...
            assert (answer.status_code, answer.headers["Retry-After"]) == (503, "2")
            assert answer.headers["Content-Type"] == "text/plain"
            assert answer.text == "HTTP 503\n"
            failed += 1
            time.sleep(0.05)
        assert time.monotonic() >= asked + seconds  # ...and for the whole while
        assert failed >= 2 and answer.json()["error"] == []
        assert trades(client)["error"] == []


@pytest.mark.parametrize("status", [520, 403])
def test_rest_down_from_cloudflare_is_an_html_page(status: int) -> None:
    with serving(history_market()) as (sim, client):
        sim.rest_down(30, status)
        answer = client.get(TRADES, params={"pair": "XBTUSD"})
        assert answer.status_code == status and "Retry-After" not in answer.headers
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.text.startswith("<!DOCTYPE html>") and "Cloudflare" in answer.text
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(answer.content)
        sim.rest_down(0)  # ends it at once
        assert client.get(ASSET_PAIRS).status_code == 200


def test_rest_down_429_then_counted_statuses() -> None:
    with serving(history_market()) as (sim, client):
        sim.rest_down(30, 429, retry_after=1.5)
        answer = client.get(ASSET_PAIRS)
        assert (answer.status_code, answer.headers["Retry-After"]) == (429, "1.5")
        sim.rest_down(0)
        sim.rest_http_status(502, 1)  # the count-based fault still works beside it
        assert [client.get(ASSET_PAIRS).status_code for _ in range(2)] == [502, 200]
        with pytest.raises(ValueError):
            sim.rest_down(1, 999)


# --- a REST that lags the socket --------------------------------------------------------


def test_rest_lag_serves_only_trades_old_enough() -> None:
    market = Market(["BTC/USD", "ETH/USD"])
    lag = 2.0
    with serving(market) as (sim, client):
        sim.rest_lag(lag)
        market.seed_history(40, span_seconds=4.0)  # one trade every 0.1 s up to now
        history = market.history("BTC/USD")
        before = time.time_ns()
        rows, last = rows_and_last(trades(client, since=0))
        after = time.time_ns()
        served = [row[6] for row in rows]
        old = [t.trade_id for t in history if t.time_ns <= before - lag * 1e9]
        recent = [t.trade_id for t in history if t.time_ns > after - lag * 1e9]
        assert old and recent  # the socket has trades that REST does not have yet
        assert served == [t.trade_id for t in history[: len(served)]]
        assert served[: len(old)] == old and not set(served) & set(recent)
        assert last == history[len(served) - 1].time_ns  # `last` follows what was served
        assert rows_and_last(trades(client, since=last)) == ([], last)  # nothing more, yet
        latest = [row[6] for row in rows_and_last(trades(client, count=5))[0]]
        assert latest[-1] < recent[0] and len(latest) == 5  # the latest that REST has

        time.sleep(0.3)  # REST catches up with time, by the trades of that time
        more = [row[6] for row in rows_and_last(trades(client, since=last))[0]]
        assert more and more[0] == served[-1] + 1 and more[-1] < history[-1].trade_id
        sim.rest_lag(0)  # off: everything
        rows, last = rows_and_last(trades(client, since=0))
        assert [row[6] for row in rows] == [t.trade_id for t in history]
        assert last == history[-1].time_ns


# --- broken rows ------------------------------------------------------------------------


def test_broken_rows_at_the_edges_of_full_pages() -> None:
    market = history_market(2500)
    history = market.history("BTC/USD")  # ids 1000..3499; pages from since=0: 1000..1999...
    with serving(market) as (sim, client):
        sim.corrupt_rest_rows("BTC/USD", [1000, 1999, 2000])
        sim.corrupt_rest_row("BTC/USD", 2500, row=["garbage"])
        rows, last = rows_and_last(trades(client, since=0))
        assert len(rows) == 1000  # broken rows still fill the page...
        assert last == history[999].time_ns  # ...and the cursor, even as its last row
        assert rows[0] == ["not-a-price", *history[0].to_rest_row()[1:]]
        assert rows[999] == ["not-a-price", *history[999].to_rest_row()[1:]]
        assert rows[1:999] == [t.to_rest_row() for t in history[1:999]]
        rows, last = rows_and_last(trades(client, since=last))
        assert len(rows) == 1000 and last == history[1999].time_ns
        assert rows[0][0] == "not-a-price" and rows[0][6] == 2000
        assert rows[500] == ["garbage"]  # any row, even one without its trade_id
        again = rows_and_last(trades(client, since=0))[0]  # broken on every read
        assert again[0][0] == again[999][0] == "not-a-price"
        other = client.get(TRADES, params={"pair": "ETHUSD", "since": 0}).json()["result"]
        assert all(row[0] != "not-a-price" for row in other["XETHZUSD"])  # only that pair


def test_broken_rows_for_a_few_reads_then_served_correctly() -> None:
    market = history_market(2500)
    history = market.history("BTC/USD")
    with serving(market) as (sim, client):
        sim.corrupt_rest_rows("BTC/USD", [1500, 2999], reads=2)
        first_page = [rows_and_last(trades(client, since=0))[0] for _ in range(3)]
        prices = [page[500][0] for page in first_page]
        assert prices == ["not-a-price", "not-a-price", history[500].to_rest_row()[0]]
        assert first_page[2] == [t.to_rest_row() for t in history[:1000]]
        # 2999 (the last row of page 2) was in none of those answers: its reads are to come
        since = history[999].time_ns
        last_rows = [rows_and_last(trades(client, since=since))[0][999] for _ in range(3)]
        assert [row[0] for row in last_rows[:2]] == ["not-a-price", "not-a-price"]
        assert last_rows[2] == history[1999].to_rest_row()
        sim.corrupt_rest_row("BTC/USD", 1000)
        sim.corrupt_rest_row("BTC/USD", 1000, reads=0)  # mended at once
        assert rows_and_last(trades(client, since=0))[0][0] == history[0].to_rest_row()
        with pytest.raises(ValueError):
            sim.corrupt_rest_row("BTC/USD", 1000, reads=-1)


# --- trades sharing one time ------------------------------------------------------------


def test_fills_share_one_time_per_taker_order() -> None:
    market = Market(["BTC/USD", "ETH/USD"], fills=3)
    market.seed_history(10, span_seconds=10, end_ns=100 * 10**9)
    for pair in market.pairs:
        times = [t.time_ns for t in market.history(pair)]
        assert times == [times[0]] * 3 + [times[3]] * 3 + [times[6]] * 3 + [times[9]]
        assert times[0] < times[3] < times[6] < times[9]
    live = market.next_trades(4)  # whole orders: 3 trades of BTC/USD, then 3 of ETH/USD
    assert [t.symbol for t in live] == ["BTC/USD"] * 3 + ["ETH/USD"] * 3
    assert len({t.time_ns for t in live[:3]}) == len({t.time_ns for t in live[3:]}) == 1
    assert live[0].time_ns > 100 * 10**9  # a new order after the history, not its last one
    assert [t.trade_id for t in live[:3]] == [1010, 1011, 1012]
    more = market.next_trades(1)
    assert [t.trade_id for t in more] == [1013, 1014, 1015] and more[0].time_ns > live[0].time_ns
    with pytest.raises(ValueError):
        Market(["BTC/USD"], fills=0)


def test_since_skips_the_rest_of_a_run_a_page_ends_in() -> None:
    market = history_market(2500)
    run = market.run_across_page("BTC/USD")  # pages of 1000 from since=0
    assert run == range(1998, 2003)
    history = market.history("BTC/USD")
    shared = history[run[0] - 1000].time_ns
    assert [t.time_ns for t in history[998:1003]] == [shared] * 5
    assert history[997].time_ns < shared < history[1003].time_ns
    with serving(market) as (_sim, client):
        rows, last = rows_and_last(trades(client, since=0))
        assert len(rows) == 1000 and rows[-1][6] == 1999 and last == shared
        assert rows[-1][2] == rows[-2][2] == shared // 1000 / 1e6  # the REST time too
        rows, _ = rows_and_last(trades(client, since=last))
        assert rows[0][6] == 2003  # since is exclusive: 2000..2002 are left behind
        rows, _ = rows_and_last(trades(client, since=shared - 1))  # re-read before the row
        assert [row[6] for row in rows[:5]] == list(run)


def test_run_across_a_later_page_from_any_since() -> None:
    market = history_market(3500)
    history = market.history("BTC/USD")
    since = history[10].time_ns  # a client starting after trade 1010: pages 1011..2010...
    run = market.run_across_page("BTC/USD", since, boundary=2, before=1, after=4)
    assert run == range(3010, 3015)
    with serving(market) as (_sim, client):
        last = since
        for _ in range(2):
            rows, last = rows_and_last(trades(client, since=last))
        assert rows[-1][6] == 3010 and last == history[2010].time_ns
        assert rows_and_last(trades(client, since=last))[0][0][6] == 3015
    times = [t.time_ns for t in market.history("BTC/USD")]
    assert all(a <= b for a, b in pairwise(times))
    with pytest.raises(ValueError):
        market.run_across_page("BTC/USD", history[-900].time_ns)  # no trades after the page
    with pytest.raises(ValueError):
        market.share_time("BTC/USD", 4400, 4600)


# --- not Kraken at all ------------------------------------------------------------------


def test_rest_not_kraken_answers_like_another_web_server() -> None:
    with serving(history_market()) as (sim, client):
        sim.rest_not_kraken()
        for path in (TRADES + "?pair=XBTUSD", ASSET_PAIRS, "/"):
            answer = client.get(path)
            assert answer.status_code == 404 and answer.headers["Content-Type"] == "text/html"
            assert "<title>404 Not Found</title>" in answer.text
        sim.rest_not_kraken(200)
        answer = client.get(ASSET_PAIRS)
        assert answer.status_code == 200 and "<html>" in answer.text
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(answer.content)
        sim.rest_not_kraken(200, b'{"status": "ok"}', "application/json")  # JSON, not Kraken's
        assert client.get(TRADES, params={"pair": "XBTUSD"}).json() == {"status": "ok"}
        sim.rest_not_kraken(None)
        assert rows_and_last(trades(client))[0]
