"""Validation the connector does itself: configuration errors and Kraken v2 pair symbols."""

from __future__ import annotations

import re

__all__ = ["PAIR_PATTERN", "ConfigError", "parse_pairs"]

PAIR_PATTERN = re.compile(r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def parse_pairs(raw: str, *, setting: str = "pairs") -> tuple[str, ...]:
    """`"btc/usd, ETH/USD"` -> `("BTC/USD", "ETH/USD")`; rejects what is not BASE/QUOTE."""
    pairs: list[str] = []
    for part in raw.split(","):
        pair = part.strip().upper()
        if not pair:
            continue
        if not PAIR_PATTERN.match(pair):
            raise ConfigError(
                f"{setting}: {part.strip()!r} is not a Kraken v2 symbol (BASE/QUOTE, e.g. BTC/USD)"
            )
        if pair not in pairs:
            pairs.append(pair)
    if not pairs:
        raise ConfigError(f"{setting}: no pair given (e.g. BTC/USD,ETH/USD)")
    return tuple(pairs)
