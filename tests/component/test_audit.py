"""The audit against the test broker and the Kraken simulator's REST API.

Topics here are written by the test (as the pipeline writes them, see tests/support/audit.py);
`tests/e2e/test_audit_e2e.py` audits topics the pipeline and the bench's direct loop wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from simulator import KrakenSimulator, Market
from tests.support.audit import (
    Written,
    audit_topic,
    changed,
    found,
    gap_event,
    market_topic,
    only,
    pair_report,
    positions,
    write_gaps,
    write_topic,
)
from tests.support.kafka import unique
from tests.support.repo import ROOT

PAIRS = ("BTC/USD", "ETH/USD")
FAST_REST = ("--rest-interval", "0.02")  # the simulator has no budget to keep

pytestmark = [
    # 2,500 trades a pair: 3 REST pages each
    pytest.mark.market(PAIRS, seed=17, seed_history={"count_per_pair": 2500, "span_seconds": 2500}),
    pytest.mark.kraken(rate=0),
]


def test_the_command_reports_a_clean_topic_and_exits_0(broker: str, market: Market) -> None:
    topic = unique("trades")
    write_topic(broker, topic, market_topic(market))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sources.audit",
            "--broker",
            broker,
            "--topic",
            topic,
            "--gaps",
            unique("no-gaps"),
            "--json",
            "--idle-timeout",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = orjson.loads(result.stdout)
    assert report["summary"]["status"] == "clean" and report["gaps_topic"] is None
    assert report["read"]["records"] == 5000 and report["read"]["ended"] == "end of partitions"
    for pair in PAIRS:
        history = [t.trade_id for t in market.history(pair)]
        summary = pair_report(report, pair)
        assert summary["trades"] == len(history)
        assert (summary["first_trade_id"], summary["last_trade_id"]) == (history[0], history[-1])


def test_verify_rest_finds_a_changed_price_and_tells_real_losses_from_what_kraken_lacks(
    broker: str, market: Market, kraken: KrakenSimulator
) -> None:
    clean = market_topic(market)
    btc = positions(clean, "BTC/USD")
    served = [clean[i].trade_id for i in btc[1200:1203]]  # removed; Kraken still has them
    lacking = [clean[i].trade_id for i in btc[2000:2005]]  # removed; Kraken lacks them too
    kraken.withhold_rest("BTC/USD", lacking[0], lacking[-1])
    gone = {*btc[1200:1203], *btc[2000:2005]}
    copy = [r for i, r in enumerate(clean) if i not in gone]
    price_at = btc[700]
    copy[price_at] = changed(copy[price_at], price=copy[price_at].value["price"] + 0.5)
    topic, gaps = unique("trades"), unique("gaps")
    write_topic(broker, topic, copy)
    write_gaps(broker, gaps, [gap_event("BTC/USD", lacking[0], lacking[-1])])

    code, report = audit_topic(
        "--broker",
        broker,
        "--topic",
        topic,
        "--gaps",
        gaps,
        "--verify-rest",
        "--kraken-rest-url",
        kraken.rest_url,
        *FAST_REST,
    )
    assert code == 1
    btc_report = pair_report(report, "BTC/USD")
    assert [(m["trade_id"], m["field"]) for m in btc_report["rest"]["mismatches"]] == [
        (copy[price_at].trade_id, "price")
    ]
    holes = {(h["first_trade_id"], h["explained"], h["rest_served"]) for h in btc_report["holes"]}
    assert holes == {(served[0], False, 3), (lacking[0], True, 0)}
    assert btc_report["rest"]["compared"] == 2500 - 8 and not btc_report["rest"]["not_served"]
    eth = pair_report(report, "ETH/USD")
    assert eth["status"] == "clean" and eth["rest"]["compared"] == 2500
    assert not eth["rest"]["mismatches"]


def test_decimal_strings_are_compared_as_kraken_s_text(
    broker: str, market: Market, kraken: KrakenSimulator
) -> None:
    clean = market_topic(market, decimal_strings=True)
    topic = unique("trades")
    write_topic(broker, topic, clean)
    options = (
        "--broker",
        broker,
        "--topic",
        topic,
        "--verify-rest",
        *FAST_REST,
        "--kraken-rest-url",
        kraken.rest_url,
        "--pairs",
        "ETH/*",
    )
    code, report = audit_topic(*options)
    assert code == 0, report["summary"]
    [eth] = report["pairs"]
    assert eth["value_mode"] == "decimal_strings" and eth["rest"]["compared"] == 2500

    at = positions(clean, "ETH/USD")[100]
    volume = clean[at].value["volume"]
    copy = list(clean)
    copy[at] = changed(clean[at], volume=volume + "1")  # one more decimal: another number
    topic = unique("trades")
    write_topic(broker, topic, copy)
    code, report = audit_topic(*options[:3], topic, *options[4:])
    assert code == 1
    [mismatch] = pair_report(report, "ETH/USD")["rest"]["mismatches"]
    assert (mismatch["trade_id"], mismatch["field"], mismatch["topic"]) == (
        clean[at].trade_id,
        "volume",
        volume + "1",
    )


def test_throttling_is_honoured_and_the_verification_completes(
    broker: str, market: Market, kraken: KrakenSimulator
) -> None:
    topic = unique("trades")
    write_topic(broker, topic, market_topic(market))
    kraken.throttle_rest(3)  # "EGeneral:Too many requests", as HTTP 200
    code, report = audit_topic(
        "--broker",
        broker,
        "--topic",
        topic,
        "--verify-rest",
        *FAST_REST,
        "--kraken-rest-url",
        kraken.rest_url,
    )
    assert code == 0, report["summary"]
    assert report["rest_usage"]["throttled"] == 3
    assert all(p["rest"]["compared"] == 2500 for p in report["pairs"])


def test_a_window_reads_only_its_trades_even_where_the_broker_cannot_look_up_times(
    broker: str, market: Market
) -> None:
    clean = market_topic(market)
    topic = unique("trades")
    write_topic(broker, topic, clean)
    btc = [clean[i] for i in positions(clean, "BTC/USD")]
    since, until = btc[1000].value["timestamp"], btc[1499].value["timestamp"]
    code, report = audit_topic(
        "--broker", broker, "--topic", topic, "--since", since, "--until", until
    )
    assert code == 0
    summary = pair_report(report, "BTC/USD")
    assert (summary["first_trade_id"], summary["last_trade_id"], summary["trades"]) == (
        btc[1000].trade_id,
        btc[1499].trade_id,
        500,
    )
    assert report["read"]["start"] in (
        "offsets_for_times",
        "beginning (the broker cannot look up times)",
    )


def test_explained_holes_pass_and_fail_only_with_strict(broker: str, market: Market) -> None:
    clean = market_topic(market)
    eth = positions(clean, "ETH/USD")
    first, last = clean[eth[10]].trade_id, clean[eth[14]].trade_id
    topic, gaps = unique("trades"), unique("gaps")
    write_topic(broker, topic, [r for i, r in enumerate(clean) if i not in set(eth[10:15])])
    write_gaps(broker, gaps, [gap_event("ETH/USD", first, last, "max_gap")])
    options = ("--broker", broker, "--topic", topic, "--gaps", gaps)
    code, report = audit_topic(*options)
    assert code == 0 and report["summary"]["status"] == "explained"
    [hole] = pair_report(report, "ETH/USD")["holes"]
    assert (hole["first_trade_id"], hole["last_trade_id"], hole["reasons"]) == (
        first,
        last,
        ["max_gap"],
    )
    assert audit_topic(*options, "--strict")[0] == 1


def test_a_topic_that_does_not_exist_exits_2(broker: str) -> None:
    from sources.audit.cli import main

    assert main(["--broker", broker, "--topic", unique("nothing"), "--idle-timeout", "1"]) == 2


def test_several_reader_processes_find_what_one_finds(broker: str, market: Market) -> None:
    """The partitions shared out between processes; a record on another partition too."""
    clean = market_topic(market)
    btc, eth = positions(clean, "BTC/USD"), positions(clean, "ETH/USD")
    copy = [r for i, r in enumerate(clean) if i not in (btc[100], eth[200])]
    copy.append(clean[btc[300]])  # a duplicate
    moved = clean[eth[400]]
    copy[copy.index(moved)] = Written(
        moved.partition + 1,
        "BTC/USD",
        moved.value,
        moved.timestamp_ms,  # a wrong key
    )
    topic = unique("trades")
    write_topic(broker, topic, copy)
    one = audit_topic("--broker", broker, "--topic", topic, "--workers", "1")
    three = audit_topic("--broker", broker, "--topic", topic, "--workers", "3")
    assert one[0] == three[0] == 1
    assert (
        found(three[1])
        == found(one[1])
        == only(
            holes={
                ("BTC/USD", clean[btc[100]].trade_id, clean[btc[100]].trade_id, False),
                ("ETH/USD", clean[eth[200]].trade_id, clean[eth[200]].trade_id, False),
            },
            duplicates={("BTC/USD", clean[btc[300]].trade_id)},
            key={("ETH/USD", moved.trade_id)},
        )
    )
    assert three[1]["read"]["records"] == one[1]["read"]["records"] == len(copy)


def test_rest_that_stays_away_leaves_the_check_incomplete_and_exits_2(
    broker: str, market: Market, kraken: KrakenSimulator
) -> None:
    topic = unique("trades")
    write_topic(broker, topic, market_topic(market))
    kraken.rest_http_status(503, 2, retry_after=0.05)  # an edge's answer, asked again
    code, report = audit_topic(
        *("--broker", broker, "--topic", topic, "--verify-rest", "--pairs", "BTC/USD"),
        *("--kraken-rest-url", kraken.rest_url, *FAST_REST),
    )
    assert code == 0 and pair_report(report, "BTC/USD")["rest"]["compared"] == 2500
    kraken.throttle_rest(10**6)  # "too many requests" for good: six attempts, then it gives up
    code, report = audit_topic(
        *("--broker", broker, "--topic", topic, "--verify-rest"),
        *("--kraken-rest-url", kraken.rest_url, *FAST_REST),
    )
    assert code == 2 and report["summary"]["status"] == "incomplete"
    assert all("did not answer" in p["rest"]["error"] for p in report["pairs"])
    assert report["rest_usage"]["throttled"] == 6  # the second pair is not asked again


def test_until_stops_reading_where_every_pair_has_passed_it(broker: str) -> None:
    market = Market(PAIRS, seed=19)
    market.seed_history(count_per_pair=20_000, span_seconds=20_000)  # batches of 10,000
    clean = market_topic(market)
    topic = unique("trades")
    write_topic(broker, topic, clean)
    until = clean[len(clean) // 10].value
    code, report = audit_topic("--broker", broker, "--topic", topic, "--until", until["timestamp"])
    assert code == 0 and report["read"]["ended"] == "until"
    in_window = [r for r in clean if r.value["timestamp_ms"] <= until["timestamp_ms"]]
    assert report["summary"]["trades"] == len(in_window)
    assert report["read"]["records"] < len(clean)  # the rest was not read
