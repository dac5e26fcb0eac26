"""Kraken WebSocket API v2 trades for Quix Streams: the connector.

Data path: Kraken frame -> `protocol.parse_frame` -> `Trade` -> `feed.Feed` (per-pair lanes:
dedupe, gaps, repairs) -> `KrakenTradesSource` -> source topic.

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
    "SubscriptionRejected",
    "Trade",
    "parse_frame",
]

_WHERE = {
    "ConfigError": "config",
    "Feed": "feed",
    "FeedConfig": "feed",
    "InvalidTrade": "trade",
    "KrakenTradesSource": "source",
    "SubscriptionRejected": "session",
    "Trade": "trade",
    "parse_frame": "protocol",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
