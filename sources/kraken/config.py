"""Validation the connector does itself: configuration errors, pair symbols and pair patterns.

`pairs` takes Kraken v2 symbols (`BTC/USD`), patterns with `*` for a whole side (`*/USD`,
`BTC/*`) and `all`, mixed in one comma-separated list. Only the syntax is checked here;
`instruments.resolve` turns patterns into symbols from Kraken's own list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ALL",
    "PAIR_PATTERN",
    "ConfigError",
    "explicit_symbols",
    "has_patterns",
    "is_pattern",
    "parse_pairs",
]

PAIR_PATTERN = re.compile(r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")
# A pattern: each side is a code or `*` (a whole side), at least one side `*`.
_SIDE = r"(?:[A-Z0-9]{1,16}|\*)"
SPEC_PATTERN = re.compile(rf"^{_SIDE}/{_SIDE}$")
ALL = "all"  # every online pair; the same as `*/*`


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def parse_pairs(raw: str, *, setting: str = "pairs") -> tuple[str, ...]:
    """`"btc/usd, */EUR, all"` -> `("BTC/USD", "*/EUR", "all")`: symbols and patterns, checked.

    Symbols and patterns are upper-cased, `all` (any case) and `*/*` become `all`; repeats
    are dropped. A typo (`BTC/`, `**`, `BTCUSD`, `B*C/USD`) raises `ConfigError` naming the
    setting.
    """
    entries: list[str] = []
    for part in raw.split(","):
        entry = part.strip().upper()
        if not entry:
            continue
        if entry in ("ALL", "*/*"):
            entry = ALL
        elif not SPEC_PATTERN.match(entry):
            raise ConfigError(
                f"{setting}: {part.strip()!r} is not a Kraken v2 symbol (BASE/QUOTE, e.g. "
                "BTC/USD), a pattern with * for a whole side (*/USD, BTC/*) or all"
            )
        if entry not in entries:
            entries.append(entry)
    if not entries:
        raise ConfigError(f"{setting}: no pair given (e.g. BTC/USD,ETH/USD, */USD or all)")
    return tuple(entries)


def is_pattern(entry: str) -> bool:
    """True for `all` and entries with a `*`: they stand for pairs Kraken lists."""
    return entry == ALL or "*" in entry


def has_patterns(entries: Iterable[str]) -> bool:
    """True when resolving `entries` needs Kraken's list of pairs."""
    return any(is_pattern(entry) for entry in entries)


def explicit_symbols(entries: Iterable[str]) -> tuple[str, ...]:
    """The entries that name one pair each (no pattern, not `all`)."""
    return tuple(entry for entry in entries if not is_pattern(entry))
