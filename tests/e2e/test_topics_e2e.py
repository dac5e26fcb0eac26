"""`replication`: every topic both pipelines create, Quix Streams' changelogs included (the
source's, made in its own process, too), has the replication factor it says, as the broker
reports it. (Left empty, they ask for the broker's default: tests/e2e/test_candles.py records
the requests.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from tests.support.candles import candles_pipeline
from tests.support.kafka import topics_on_broker
from tests.support.pipeline import STARTED
from tests.support.trades import PAIRS, trades_pipeline, wait_for_subscriptions

pytestmark = pytest.mark.e2e

REPLICATION = 3  # Tansu, one node, still records and reports it per partition


def test_every_topic_the_apps_create_has_the_replication_setting(
    broker: str, tmp_path: Path
) -> None:
    with (
        KrakenSimulator(Market(list(PAIRS), seed=3), rate=20.0) as sim,
        trades_pipeline(broker, sim, tmp_path / "trades", replication=str(REPLICATION)) as trades,
    ):
        wait_for_subscriptions(trades, 1)  # the source's process made its changelog
        env = {"input": trades.env["output"], "replication": str(REPLICATION)}
        with candles_pipeline(broker, tmp_path / "candles", **env) as candles:
            candles.wait_for_log(STARTED)
            on_broker = topics_on_broker(broker)
            assert candles.stop() == 0
        assert trades.stop() == 0

    output, group = trades.env["output"], trades.env["Quix__Consumer_Group"]
    created_by_trades = {output, trades.env["gaps_output"], f"source__kraken-{output}"}
    changelogs = {
        app: {name for name in on_broker if name.startswith(f"changelog__{group}--")}
        for app, group in (("trades", group), ("candles", candles.env["Quix__Consumer_Group"]))
    }
    assert len(changelogs["trades"]) == 2  # the dedupe step's and the source's
    assert len(changelogs["candles"]) == 2  # the window's and the continuity state's
    created = created_by_trades | {candles.env["output"]} | changelogs["trades"]
    created |= changelogs["candles"]
    for name in created:
        replicas = on_broker[name].replicas
        assert replicas and set(replicas) == {REPLICATION}, (name, replicas)
