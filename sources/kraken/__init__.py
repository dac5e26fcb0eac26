"""Kraken WebSocket API v2 trades for Quix Streams.

Data path: Kraken frame -> `protocol.parse_frame` -> `Trade` -> `KrakenTradesSource`
(source topic) -> `normalize_trade` -> output record.
"""

from .config import ConfigError, TradesSettings
from .normalize import normalize_trade, normalize_trades
from .protocol import parse_frame
from .source import ConnectionLost, KrakenTradesSource, SubscriptionRejected
from .trade import InvalidTrade, Trade

__all__ = [
    "ConfigError",
    "ConnectionLost",
    "InvalidTrade",
    "KrakenTradesSource",
    "SubscriptionRejected",
    "Trade",
    "TradesSettings",
    "normalize_trade",
    "normalize_trades",
    "parse_frame",
]
