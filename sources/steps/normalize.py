"""The normalization step: a Kraken v2 trade object -> the output record."""

from __future__ import annotations

from typing import Any

from ..kraken.trade import parse_timestamp_ms

__all__ = ["normalize_trade", "normalize_trades"]


def normalize_trades(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A source-topic message (the new trades of one pair) -> one record per trade.

    Use it with `sdf.apply(normalize_trades, expand=True)`: each record becomes a row.
    """
    return [normalize_trade(trade) for trade in batch]


def normalize_trade(trade: dict[str, Any]) -> dict[str, Any]:
    """Rename Kraken's fields to the output schema and add the event time in epoch ms.

    `{"symbol","side","price","qty","ord_type","trade_id","timestamp"[,"timestamp_ms","origin"]}`
    -> `{"pair","price","volume","side","order_type","trade_id","timestamp_ms","timestamp",
    "origin"}` (schemas/trade.v1.json). The source writes `timestamp_ms` along, and `origin`
    for trades from REST (`Trade.to_message`); `timestamp_ms` is parsed from `timestamp` only
    when missing, and `origin` is `ws` when missing (live trades; plain Kraken objects; the
    source-topic messages of versions before `origin`).
    `price` and `volume` pass as they are: numbers, or decimal strings (`decimal_strings`).
    """
    timestamp = trade["timestamp"]
    timestamp_ms = trade.get("timestamp_ms")
    if timestamp_ms is None:
        timestamp_ms = parse_timestamp_ms(timestamp)
    return {
        "pair": trade["symbol"],
        "price": trade["price"],
        "volume": trade["qty"],
        "side": trade["side"],
        "order_type": trade["ord_type"],
        "trade_id": trade["trade_id"],
        "timestamp_ms": timestamp_ms,
        "timestamp": timestamp,
        "origin": trade.get("origin", "ws"),
    }
