"""Example transforms for the `transforms` variable (see README, "Extending").

    transforms=transforms_example:add_notional,transforms_example:min_notional

Each function takes the StreamingDataFrame of output records and returns it extended. Both
work in either value mode: price and volume are JSON numbers, or exact decimal strings with
`decimal_strings=true` (then `notional` is an exact decimal string too).
"""

from __future__ import annotations

import os
from decimal import Decimal

from quixstreams.dataframe import StreamingDataFrame


def notional(record: dict) -> float | str:
    """price * volume in the quote currency, in the record's own value mode."""
    price, volume = record["price"], record["volume"]
    if isinstance(price, str):  # decimal_strings=true: exact arithmetic, exact text
        return str(Decimal(price) * Decimal(volume))
    return price * volume


def worth_at_least(threshold: Decimal):
    """A filter keeping records whose notional is at least `threshold` (exact comparison)."""

    def keep(record: dict) -> bool:
        return Decimal(str(record["price"])) * Decimal(str(record["volume"])) >= threshold

    return keep


def add_notional(sdf: StreamingDataFrame) -> StreamingDataFrame:
    """Add `notional` = price * volume (in the quote currency) to every record."""
    return sdf.apply(lambda record: {**record, "notional": notional(record)})


def min_notional(sdf: StreamingDataFrame) -> StreamingDataFrame:
    """Keep trades worth at least `min_notional` (variable, default 1000) of quote currency."""
    return sdf.filter(worth_at_least(Decimal(os.environ.get("min_notional", "1000"))))
