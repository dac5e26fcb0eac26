"""Kraken WebSocket API v2 trades for Quix Streams: the connector.

Data path: Kraken frame -> `protocol.parse_frame` -> `Trade` -> `feed.Feed` (per-pair lanes:
dedupe, gaps, repairs) -> `publish.Publisher` -> source topic; `KrakenTradesSource(SourceConfig(
pairs=("BTC/USD",)))` is the Quix Streams source.

Imports are lazy: `from sources.kraken import Trade` does not load websocket-client.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ConfigError",
    "Feed",
    "FeedConfig",
    "InvalidTrade",
    "KrakenTradesSource",
    "SourceConfig",
    "SubscriptionRejected",
    "Trade",
    "parse_frame",
]

_WHERE = {
    "ConfigError": "config",
    "Feed": "feed",
    "FeedConfig": "config",
    "InvalidTrade": "trade",
    "KrakenTradesSource": "source",
    "SourceConfig": "config",
    "SubscriptionRejected": "session",
    "Trade": "trade",
    "parse_frame": "protocol",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
