"""OHLCV candles from the trades topic, for Quix Streams tumbling windows.

Data path: trade record -> `is_trade` -> window `reduce(add_trade, start_candle)`
-> `.final()` -> `candle_record` -> `Continuity` (`complete`) -> output record.
"""

from .candle import CandleState, add_trade, candle_record, is_trade, start_candle
from .complete import Continuity
from .settings import CandlesSettings
from .stats import CandleStats

__all__ = [
    "CandleState",
    "CandleStats",
    "CandlesSettings",
    "Continuity",
    "add_trade",
    "candle_record",
    "is_trade",
    "start_candle",
]
