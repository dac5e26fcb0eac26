"""The audit of topics that real producers wrote: the pipeline (one run, shared by every test
here: an hour of history, a reconnect, a restart) and the bench's direct loop.

The pipeline's topic must report clean and exit 0, with and without `--verify-rest`; copies
of it, corrupted at random, must report exactly what was done (the pure layer, hypothesis;
and once the whole command on a copy written to the broker).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import KrakenSimulator, Market
from tests.support.audit import (
    Written,
    audit_report,
    audit_topic,
    changed,
    found,
    from_records,
    gap_event,
    only,
    pair_report,
    positions,
    write_gaps,
    write_topic,
)
from tests.support.examples import examples
from tests.support.kafka import Record, consume, create_topic, unique
from tests.support.repo import ROOT
from tests.support.trades import (
    PAIRS,
    assert_contiguous_without_duplicates,
    by_pair,
    reached,
    trades_pipeline,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = pytest.mark.e2e

AUDIT_MAIN = ROOT / "pipelines" / "audit" / "main.py"
FAST_REST = ("--rest-interval", "0.02")  # the simulator has no budget to keep
KINDS = ["remove", "duplicate", "swap", "key", "kafka", "field", "invalid", "explained"]


@dataclass
class PipelineRun:
    """What one run of the pipeline wrote, and the simulator it wrote it from (still up)."""

    market: Market
    kraken: KrakenSimulator
    output: str
    gaps: str
    records: list[Record]
    first_log: str
    first_ids: dict[str, int]


@pytest.fixture(scope="module")
def written(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    """The trades pipeline through an hour of history (Kraken throttling its REST API three
    times), a reconnect and a restart whose downtime only REST can repair."""
    market = Market(PAIRS, seed=5)
    market.seed_history(count_per_pair=3000, span_seconds=3300)  # within the last hour
    first_ids = {p: market.history(p)[0].trade_id for p in PAIRS}
    env = {
        "output": unique("trades"),
        "gaps_output": unique("gaps"),
        "Quix__Consumer_Group": unique("trades-app"),
        "backfill_since": "1h",
    }
    workdir = tmp_path_factory.mktemp("audit-pipeline")
    with KrakenSimulator(market, rate=40.0, batch=2, heartbeat_interval=0.5) as kraken:
        kraken.throttle_rest(3)  # Kraken's "EGeneral:Too many requests" on the first calls
        pipeline = trades_pipeline(broker, kraken, workdir, **env).start()
        try:
            pipeline.wait_for_log(r"Backfill of ETH/USD complete", timeout=90)
            wait_for_trades(market, 10)
            kraken.drop_connections()  # a reconnect: the snapshot covers it
            wait_for_subscriptions(pipeline, 2)
            wait_for_trades(market, 10)
            assert pipeline.stop() == 0
            first_log = pipeline.log
            wait_for_trades(market, 80)  # the downtime: more than a snapshot, REST repairs it
            pipeline = trades_pipeline(broker, kraken, workdir, **env).start()
            pipeline.wait_for_log(r"Resuming from the state: ")
            target = wait_for_trades(market, 10)
            records = consume(broker, env["output"], until=reached(PAIRS, target), timeout=90)
            assert pipeline.stop() == 0
        finally:
            pipeline.kill()
        yield PipelineRun(
            market, kraken, env["output"], env["gaps_output"], records, first_log, first_ids
        )


def test_history_since_an_hour_ago_then_live_without_gap(written: PipelineRun) -> None:
    ids = by_pair(written.records)
    assert_contiguous_without_duplicates(ids)
    for pair in PAIRS:
        assert ids[pair][0] == written.first_ids[pair]
    log = written.first_log
    assert re.search(r"WARNING.*waits for Kraken REST: Kraken said EGeneral:Too many requests", log)
    assert re.findall(r"rest_failures=(\d+)", log)[-1] == "3"  # each throttled answer, waited out


def test_the_audit_job_reports_the_pipeline_s_topic_clean_and_exits_0(
    broker: str, written: PipelineRun
) -> None:
    """`pipelines/audit/main.py` configured by variables, as the Quix Job runs it."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.lower().startswith("quix__")},
        "Quix__Broker__Address": broker,
        "input": written.output,
        "gaps_input": written.gaps,
        "json": "true",
        "idle_timeout": "2",
    }
    result = subprocess.run(
        [sys.executable, str(AUDIT_MAIN)],
        cwd=AUDIT_MAIN.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = orjson.loads(result.stdout)
    assert report["summary"]["status"] == "clean"
    ids = by_pair(written.records)
    for pair in PAIRS:
        summary = pair_report(report, pair)
        # the topic holds at least what the test read (the pipeline wrote on until stopped)
        assert summary["first_trade_id"] == ids[pair][0]
        assert summary["last_trade_id"] >= ids[pair][-1]
        assert summary["trades"] == summary["last_trade_id"] - summary["first_trade_id"] + 1


def test_verify_rest_finds_every_trade_of_the_pipeline_s_topic_as_kraken_serves_it(
    broker: str, written: PipelineRun
) -> None:
    code, report = audit_topic(
        *("--broker", broker, "--topic", written.output, "--gaps", written.gaps),
        *("--verify-rest", "--kraken-rest-url", written.kraken.rest_url, *FAST_REST),
    )
    assert code == 0, report["summary"]
    for pair in report["pairs"]:
        rest = pair["rest"]
        assert rest["compared"] == pair["trades"] and not rest["mismatches"], pair["pair"]
        assert not rest["not_served"] and not pair["holes"]


@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_corrupted_copies_of_the_pipeline_s_topic_report_exactly_what_was_done(
    written: PipelineRun, data: st.DataObject
) -> None:
    """One corruption per pair, of a random kind and place, on the pure layer."""
    topic = from_records(written.records)
    corrupt, events, expected = list(topic), [], only()
    for pair in PAIRS:
        places = positions(corrupt, pair)
        kind = data.draw(st.sampled_from(KINDS))
        at = data.draw(st.sampled_from(places[1:-2]))
        record = corrupt[at]
        trade_id = record.trade_id
        if kind == "remove":
            del corrupt[at]
            expected["holes"].add((pair, trade_id, trade_id, False))
        elif kind == "explained":
            del corrupt[at]
            events.append(gap_event(pair, trade_id, trade_id, "abandoned"))
            expected["holes"].add((pair, trade_id, trade_id, True))
        elif kind == "duplicate":
            corrupt.insert(data.draw(st.integers(at + 1, len(corrupt))), record)
            expected["duplicates"].add((pair, trade_id))
        elif kind == "swap":
            following = places[places.index(at) + 1]
            corrupt[at], corrupt[following] = corrupt[following], record
            expected["late"].add((pair, trade_id, trade_id, trade_id + 1))
        elif kind == "key":
            corrupt[at] = Written(record.partition, "XBT/USD", record.value, record.timestamp_ms)
            expected["key"].add((pair, trade_id))
        elif kind == "kafka":
            corrupt[at] = Written(
                record.partition, record.key, record.value, record.timestamp_ms - 60_000
            )
            expected["time"].add((pair, trade_id))
        elif kind == "field":
            corrupt[at] = changed(record, timestamp_ms=record.value["timestamp_ms"] + 1)
            expected["time"].add((pair, trade_id))
        else:
            corrupt[at] = changed(record, volume=-1)
            expected["invalid"].add((pair, trade_id))
    assert found(audit_report(corrupt, events)) == expected


def test_the_whole_command_names_what_was_done_to_a_copy_on_the_broker(
    broker: str, written: PipelineRun
) -> None:
    """A copy of the topic (each record in its partition) with one corruption of each kind,
    and a gap event for one of its holes, audited by `python -m sources.audit`."""
    topic = from_records(written.records)
    btc, eth = positions(topic, "BTC/USD"), positions(topic, "ETH/USD")
    at_btc = {"gone": 100, "explained": 200, "twice": 300, "key": 400, "late": 500}
    pick = {name: topic[btc[i]] for name, i in at_btc.items()}
    pick |= {name: topic[eth[i]] for name, i in (("time", 100), ("invalid", 200))}
    corrupt = []
    for record in topic:
        if record is pick["gone"] or record is pick["explained"]:
            continue
        if record is pick["key"]:
            record = Written(record.partition, "ETH/USD", record.value, record.timestamp_ms)
        elif record is pick["time"]:
            record = Written(record.partition, record.key, record.value, 0)
        elif record is pick["invalid"]:
            record = changed(record, side="sideways")
        elif record is pick["late"]:
            continue  # written after the next trade of its pair, below
        corrupt.append(record)
        if record.value.get("trade_id") == pick["late"].trade_id + 1 and record.pair == "BTC/USD":
            corrupt.append(pick["late"])
    corrupt.append(pick["twice"])
    copy, gaps = unique("trades-copy"), unique("gaps-copy")
    write_topic(broker, copy, corrupt)
    explained = pick["explained"].trade_id
    write_gaps(broker, gaps, [gap_event("BTC/USD", explained, explained, "max_gap")])
    command = ["-m", "sources.audit", "--broker", broker, "--topic", copy, "--gaps", gaps]
    result = subprocess.run(
        [sys.executable, *command, "--json", "--idle-timeout", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    late = pick["late"].trade_id
    assert found(orjson.loads(result.stdout)) == only(
        holes={
            ("BTC/USD", pick["gone"].trade_id, pick["gone"].trade_id, False),
            ("BTC/USD", explained, explained, True),
        },
        duplicates={("BTC/USD", pick["twice"].trade_id)},
        key={("BTC/USD", pick["key"].trade_id)},
        late={("BTC/USD", late, late, late + 1)},
        time={("ETH/USD", pick["time"].trade_id)},
        invalid={("ETH/USD", pick["invalid"].trade_id)},
    )


def test_a_topic_the_bench_direct_loop_wrote_can_be_audited(
    broker: str, written: PipelineRun
) -> None:
    """Another producer (websocket-client + orjson + confluent-kafka, no Quix Streams)."""
    topic = unique("direct")
    create_topic(broker, topic, 3)
    command = ["-m", "bench.direct_loop", f"--broker={broker}", f"--topic={topic}"]
    loop = subprocess.Popen(
        [sys.executable, *command, f"--ws-url={written.kraken.ws_url}", "--pairs=BTC/USD,ETH/USD"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        consume(broker, topic, until=lambda r: len(r) >= 100, timeout=30)
        time.sleep(1)
    finally:
        loop.send_signal(signal.SIGTERM)
        output, _ = loop.communicate(timeout=30)
    assert loop.returncode == 0, output.decode()[-2000:]
    code, report = audit_topic(
        *("--broker", broker, "--topic", topic, "--gaps", unique("none"), "--verify-rest"),
        *("--kraken-rest-url", written.kraken.rest_url, *FAST_REST),
    )
    assert code == 0, report["summary"]
    assert {p["pair"] for p in report["pairs"]} == set(PAIRS)
    assert all(p["rest"]["compared"] == p["trades"] > 0 for p in report["pairs"])
