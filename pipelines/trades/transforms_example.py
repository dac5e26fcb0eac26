"""Example transforms for the `transforms` variable (see README, "Extending").

    transforms=transforms_example:add_notional,transforms_example:min_notional

Each function takes the StreamingDataFrame of output records and returns it extended.
"""

from __future__ import annotations

import os

from quixstreams.dataframe import StreamingDataFrame


def add_notional(sdf: StreamingDataFrame) -> StreamingDataFrame:
    """Add `notional` = price * volume (in the quote currency) to every record."""
    return sdf.apply(lambda record: {**record, "notional": record["price"] * record["volume"]})


def min_notional(sdf: StreamingDataFrame) -> StreamingDataFrame:
    """Keep trades worth at least `min_notional` (variable, default 1000) of quote currency."""
    threshold = float(os.environ.get("min_notional", "1000"))
    return sdf.filter(lambda record: record["price"] * record["volume"] >= threshold)
