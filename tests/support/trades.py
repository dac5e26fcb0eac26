"""Helpers shared by the end-to-end tests: run the trades pipeline, read and check its topic."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from simulator import KrakenSimulator, Market
from tests.support.kafka import Record, unique
from tests.support.pipeline import TRADES_MAIN, PipelineProcess

PAIRS = ("BTC/USD", "ETH/USD")


def trades_pipeline(
    broker: str, sim: KrakenSimulator, workdir: Path, **env: str
) -> PipelineProcess:
    """The trades pipeline on `broker` and the simulator, with a fresh output topic and group."""
    variables = {
        "Quix__Broker__Address": broker,
        "output": unique("trades"),
        "gaps_output": unique("gaps"),
        "pairs": ",".join(PAIRS),
        "kraken_ws_url": sim.ws_url,
        "kraken_rest_url": sim.rest_url,
        "Quix__Consumer_Group": unique("trades-app"),
        "heartbeat_timeout": "3",
        **env,
    }
    return PipelineProcess(TRADES_MAIN, variables, workdir)


@dataclass(frozen=True)
class HistoryRun:
    """A finished `backfill_only` run: the market read, the pipeline (env, log), its exit code."""

    market: Market
    pipeline: PipelineProcess
    code: int


def run_history(
    broker: str, workdir: Path, market: Market, since: str = "30d", timeout: float = 180
) -> HistoryRun:
    """The trades pipeline fetching the history of `market` since `since`, to its end."""
    with KrakenSimulator(market, rate=0) as kraken:
        env = {"backfill_since": since, "backfill_only": "true"}
        pipeline = trades_pipeline(broker, kraken, workdir, **env).start()
        try:
            code = pipeline.wait(timeout=timeout)
        finally:
            pipeline.kill()
    return HistoryRun(market, pipeline, code)


def by_pair(records: list[Record]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = defaultdict(list)
    for record in records:
        ids[record.value["pair"]].append(record.value["trade_id"])
    return ids


def reached(pairs: tuple[str, ...], trade_ids: dict[str, int]):
    """Stop reading once every pair has reached the given trade_id (each call looks at the
    records that came since the last: reading tens of thousands stays linear)."""
    last: dict[str, int] = {}
    seen = 0

    def done(records: list[Record]) -> bool:
        nonlocal seen
        for record in records[seen:]:
            last[record.value["pair"]] = record.value["trade_id"]
        seen = len(records)
        return all(last.get(pair, -1) >= trade_ids[pair] for pair in pairs)

    return done


def assert_contiguous_without_duplicates(ids: dict[str, list[int]]) -> None:
    for pair, trade_ids in ids.items():
        assert len(trade_ids) == len(set(trade_ids)), f"{pair} has duplicates"
        assert trade_ids == list(range(trade_ids[0], trade_ids[0] + len(trade_ids))), (
            f"{pair} is not contiguous: {trade_ids}"
        )


def last_ids(market: Market, pairs: tuple[str, ...] = PAIRS) -> dict[str, int]:
    """Each pair's last trade_id in the simulated market."""
    return {pair: market.last(pair, 1)[-1].trade_id for pair in pairs}


def wait_for_trades(
    market: Market, count: int, timeout: float = 30.0, pairs: tuple[str, ...] = PAIRS
) -> dict[str, int]:
    """Let the simulator make `count` more trades per pair; return each pair's last trade_id."""
    start = last_ids(market, pairs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = last_ids(market, pairs)
        if all(last[p] - start[p] >= count for p in pairs):
            return last
        time.sleep(0.1)
    raise AssertionError("the simulator made too few trades")


def wait_for_subscriptions(pipeline: PipelineProcess, count: int, timeout: float = 30) -> None:
    """Wait until the pipeline has subscribed `count` times (once per connection)."""
    deadline = time.monotonic() + timeout
    while len(re.findall(r"Subscribed to ETH/USD", pipeline.log)) < count:
        assert time.monotonic() < deadline, pipeline.log[-3000:]
        time.sleep(0.1)


def wait_for_positions(
    pipeline: PipelineProcess, pairs: tuple[str, ...] = PAIRS, timeout: float = 30
) -> None:
    """Wait until the source has published trades of every pair (its summary says so): from
    then on it holds a position for each, and a trade_id that leaps past it is a gap. (A
    subscription alone is not enough: an outage that starts before its snapshot arrives
    leaves the pair without a position, and the first trade after it is the pair's first.)"""
    deadline = time.monotonic() + timeout
    while True:
        summaries = re.findall(r"Summary: trades: ([^|]*)\|", pipeline.log)
        counts = dict(re.findall(r"(\S+)=(\d+)", summaries[-1])) if summaries else {}
        if all(int(counts.get(pair, 0)) > 0 for pair in pairs):
            return
        assert time.monotonic() < deadline, pipeline.log[-3000:]
        time.sleep(0.1)
