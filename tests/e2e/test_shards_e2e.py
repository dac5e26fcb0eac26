"""Scale-out: two shards (`shards=2`) on one broker and one Kraken, writing one output topic."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from simulator import KrakenSimulator, Market
from sources.app.shards import shard_pairs
from tests.support.kafka import consume, create_topic, unique
from tests.support.trades import (
    assert_contiguous_without_duplicates,
    by_pair,
    reached,
    trades_pipeline,
    wait_for_trades,
)

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "DOGE/USD", "ETH/EUR", "ADA/USD")
SHARDS = 2

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(PAIRS, seed=5, seed_history={"count_per_pair": 60, "span_seconds": 60}),
    pytest.mark.kraken(rate=60.0, batch=3, heartbeat_interval=0.5),
]


def wait_for_simulator_subscriptions(
    kraken: KrakenSimulator, pairs: set[str], timeout: float = 40
) -> None:
    """Wait until the simulator's open connections hold a subscription to each of `pairs`."""
    deadline = time.monotonic() + timeout
    while not pairs <= set().union(*kraken.subscriptions):
        assert time.monotonic() < deadline, f"subscribed: {kraken.subscriptions}"
        time.sleep(0.1)


def test_two_shards_write_every_trade_once_to_one_topic(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    split = [set(shard_pairs(PAIRS, shard, SHARDS)) for shard in range(SHARDS)]
    assert all(split), f"each shard needs pairs for this test: {split}"
    output = unique("trades-sharded")
    shards = [
        trades_pipeline(
            broker,
            kraken,
            tmp_path / f"shard-{shard}",
            output=output,
            pairs="*/USD,ETH/EUR",  # split after the pattern is resolved
            shards=str(SHARDS),
            shard=str(shard),
            Quix__Consumer_Group="",  # left at its default: each shard derives its own
        )
        for shard in range(SHARDS)
    ]
    for pipeline in shards:
        pipeline.start()
    try:
        for shard, pipeline in enumerate(shards):
            pipeline.wait_for_log(rf"Shard {shard} of 2: {len(split[shard])} of the 6 pairs")
        wait_for_simulator_subscriptions(kraken, set(PAIRS))
        target = wait_for_trades(market, 10, pairs=PAIRS)
        records = consume(broker, output, until=reached(PAIRS, target), timeout=30)
        codes = [pipeline.stop() for pipeline in shards]
    finally:
        for pipeline in shards:
            pipeline.kill()
    assert codes == [0, 0], [pipeline.log[-2000:] for pipeline in shards]

    # each pair subscribed by exactly one shard, on its own connection(s)
    for request in kraken.subscribe_requests:
        symbols = set(request["params"]["symbol"])
        assert any(symbols <= mine for mine in split), symbols
    # together, every trade of every pair once and in order, keyed by pair, one partition each
    ids = by_pair(records)
    assert set(ids) == set(PAIRS)
    assert_contiguous_without_duplicates(ids)
    assert all(ids[pair][-1] >= target[pair] for pair in PAIRS)
    partitions: dict[str, set[int]] = {}
    for record in records:
        assert record.key == record.value["pair"]
        partitions.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())
    # each shard its own source topic and consumer group (hence its own state)
    topics = AdminClient({"bootstrap.servers": broker}).list_topics(timeout=10).topics
    for shard in range(SHARDS):
        assert f"source__kraken-{output}-shard-{shard}-of-2" in topics
        assert f'consumer_group="kraken-trades-shard-{shard}-of-2"' in shards[shard].log


def test_an_output_topic_with_another_partition_count_stops_the_app_at_once(
    broker: str, kraken: KrakenSimulator, tmp_path: Path
) -> None:
    output = unique("trades-two-partitions")
    create_topic(broker, output, partitions=2)
    with trades_pipeline(broker, kraken, tmp_path, output=output, partitions="3") as pipeline:
        code = pipeline.wait(timeout=30)
    assert code == 2, pipeline.log[-3000:]
    assert re.search(
        rf"ERROR.*Configuration error: partitions: topic {output} exists with 2 partitions, "
        r"but partitions is 3",
        pipeline.log,
    )
    assert "Subscribed to" not in pipeline.log  # refused before the source started
