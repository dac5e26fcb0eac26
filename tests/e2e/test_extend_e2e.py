"""The extension point: user transforms named in `transforms`, without touching the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import KrakenSimulator, Market
from tests.support.kafka import consume
from tests.support.schemas import assert_valid
from tests.support.trades import (
    PAIRS,
    reached,
    trades_pipeline,
    wait_for_subscriptions,
    wait_for_trades,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.market(PAIRS, seed=21, seed_history={"count_per_pair": 50, "span_seconds": 30}),
    pytest.mark.kraken(rate=40.0, batch=2, heartbeat_interval=0.5),
]

USER_MODULE = """
def tag_exchange(sdf):
    return sdf.apply(lambda record: {**record, "exchange": "kraken"})
"""


def test_shipped_and_user_transforms_run_in_order_before_the_topic(
    broker: str, kraken: KrakenSimulator, market: Market, tmp_path: Path
) -> None:
    (tmp_path / "my_steps.py").write_text(USER_MODULE)  # the pipeline's working directory
    transforms = (
        "transforms_example:add_notional,transforms_example:min_notional,my_steps:tag_exchange"
    )
    threshold = 2000.0
    env = {"transforms": transforms, "min_notional": str(threshold)}
    with trades_pipeline(broker, kraken, tmp_path, **env) as pipeline:
        wait_for_subscriptions(pipeline, 1)
        target = wait_for_trades(market, 30)
        passing = {
            p: [t.trade_id for t in market.history(p) if t.price * t.qty >= threshold]
            for p in PAIRS
        }
        last_passing = {p: max(i for i in passing[p] if i <= target[p]) for p in PAIRS}
        records = consume(broker, pipeline.env["output"], until=reached(PAIRS, last_passing))
        assert pipeline.stop() == 0
    history = {(t.symbol, t.trade_id): t for p in PAIRS for t in market.history(p)}
    # the trade schema is open to the fields transforms add (and only to those)
    assert_valid([r.value for r in records], "trade.v1", only_schema_fields=False)
    for record in records:
        value = record.value
        sent = history[(value["pair"], value["trade_id"])]
        assert value["notional"] == pytest.approx(sent.price * sent.qty)
        assert value["exchange"] == "kraken"  # the user's step ran too
    for pair in PAIRS:  # the filter kept exactly the trades worth the threshold
        got = [r.value["trade_id"] for r in records if r.value["pair"] == pair]
        window = [i for i in passing[pair] if got[0] <= i <= last_passing[pair]]
        assert got[: len(window)] == window


def test_a_transform_that_cannot_be_imported_fails_fast(
    broker: str, kraken: KrakenSimulator, tmp_path: Path
) -> None:
    with trades_pipeline(broker, kraken, tmp_path, transforms="nowhere:step") as pipeline:
        code = pipeline.wait(timeout=30)
    assert code == 2
    assert "Configuration error: transforms: cannot import 'nowhere'" in pipeline.log
