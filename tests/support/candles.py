"""Helpers shared by the tests of the candles pipeline: run it on a broker."""

from __future__ import annotations

from pathlib import Path

from tests.support.kafka import unique
from tests.support.pipeline import CANDLES_MAIN, PipelineProcess


def candles_pipeline(broker: str, workdir: Path, **env: str) -> PipelineProcess:
    """The candles pipeline on `broker`, with a fresh output topic and consumer group."""
    variables = {
        "Quix__Broker__Address": broker,
        "Quix__Consumer_Group": unique("candles-app"),
        "output": unique("candles"),
        **env,
    }
    return PipelineProcess(CANDLES_MAIN, variables, workdir)
