"""Dataframe steps the e2e tests give the trades pipeline through its `transforms` setting."""

from __future__ import annotations

from quixstreams.dataframe import StreamingDataFrame


def btc_usd_only(sdf: StreamingDataFrame) -> StreamingDataFrame:
    """Write only BTC/USD to the output: the other pairs stay in the source topic."""
    return sdf.filter(lambda record: record["pair"] == "BTC/USD")
