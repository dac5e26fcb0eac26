"""Validation the connector does itself: configuration errors, pair symbols and pair patterns.

`pairs` takes Kraken v2 symbols (`BTC/USD`), patterns with `*` for a whole side (`*/USD`,
`BTC/*`) and `all`, mixed in one comma-separated list. Only the syntax is checked here;
`instruments.resolve` turns patterns into symbols from Kraken's own list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .schedule import CONNECT_SPACING

__all__ = [
    "ALL",
    "HELD_TRADE_BYTES",
    "MAX_BODY",
    "MAX_MESSAGE",
    "PAIR_PATTERN",
    "ConfigError",
    "FeedConfig",
    "SourceConfig",
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


# Memory one held live trade costs (the `Trade`, its strings and numbers, the list slot),
# measured with tracemalloc on parsed Kraken frames (tests/unit/test_held_memory.py).
HELD_TRADE_BYTES = 480


# Size limits (`limits.py`). Kraken's largest WebSocket message we read is the instrument
# snapshot (every pair, some 0.5 MiB); a trade message of thousands of trades is far smaller.
# `AssetPairs` (every pair with its fee tiers) is about 1.5 MiB; a `Trades` page some 100 KiB.
KRAKEN_WS_URL = "wss://ws.kraken.com/v2"  # Kraken's WebSocket API v2
KRAKEN_REST_URL = "https://api.kraken.com"  # Kraken's REST API
MAX_MESSAGE = 4 * 2**20
MAX_BODY = 16 * 2**20


@dataclass(frozen=True)
class FeedConfig:
    """How the core behaves.

    :param pairs: the Kraken v2 symbols; trades of any other symbol are counted and dropped.
    :param repair: whether REST is there to repair gaps (False: gaps are holes at once,
        with reason `repair_off`).
    :param max_gap: opt-in cap: a gap of more trades is a hole (reason `max_gap`) instead of
        being repaired; 0: every gap is repaired, whatever its size.
    :param max_held: most live trades held per pair behind a repair.
    :param max_held_bytes: most memory for held trades over all pairs (at
        `HELD_TRADE_BYTES` each); past it, the pair holding most lets them go.
    :param message_trades: most trades in one `Publish`.
    :param repair_timeout: seconds a REST request may take before it counts as failed.
    :param retry_initial: the first wait after an answer that brought nothing, seconds; it
        doubles up to `retry_cap`, and starts over once the repair advances.
    :param page_size: trades per REST page (Kraken's maximum is 1000).
    :param backfill_since_ns: publish each pair's past from then on (pairs with a position
        resume from it instead).
    :param stale_after: seconds without a live trade of a pair before its subscription is
        checked with a `Resubscribe` (0: never); also how long trade_ids that went back are
        held, without REST, before the new sequence is followed.
    :param rest_interval: seconds between two REST calls (for the ETA of big gaps).
    :param unreadable_reads: answers that must serve a row broken before its trade_id is
        named a hole (reason `unreadable`).
    """

    pairs: tuple[str, ...]
    repair: bool = True
    max_gap: int = 0
    max_held: int = 100_000
    max_held_bytes: int = 128 * 1024 * 1024
    message_trades: int = 1000
    repair_timeout: float = 60.0
    retry_initial: float = 2.0
    retry_cap: float = 60.0
    page_size: int = 1000
    backfill_since_ns: int | None = None
    stale_after: float = 120.0
    rest_interval: float = 1.0
    unreadable_reads: int = 3

    @property
    def max_held_total(self) -> int:
        """Most held trades over all pairs."""
        return max(self.max_held_bytes // HELD_TRADE_BYTES, 1)


@dataclass(frozen=True)
class SourceConfig:
    """Everything the Kraken source does, decided once: the pipeline builds it from its
    settings (`sources/app/source_config.py`), a user of the source alone by hand. Each part
    of the source reads its own fields; the core's defaults are `FeedConfig`'s.

    :param pairs: Kraken v2 symbols (`BTC/USD`), patterns already resolved
        (`instruments.resolve_pairs`); checked here, so a typo fails at once.
    :param optional_pairs: pairs that came from `all` or a pattern: one Kraken refuses is
        logged and left out; a refused pair named explicitly stops the source.
    :param name: the source name; Quix Streams names the source topic `source__<name>`.
    :param ws_url: the WebSocket endpoint.
    :param rest_url: Kraken's REST API, to repair gaps and fetch histories; None: repair off.
    :param snapshot: ask for the last 50 trades per pair on every (re)subscribe.
    :param decimal_strings: write price and qty as Kraken's exact decimal strings.
    :param heartbeat_timeout: seconds without any message before a connection is dropped.
    :param connect_timeout: seconds allowed for the TCP + TLS + WebSocket handshake.
    :param max_backoff: the cap of the reconnect delay, seconds.
    :param healthy_after: seconds a connection must last before the backoff starts over.
    :param connect_spacing: seconds between two connection attempts, at least (Kraken
        limits how often one address connects; shards behind one address share it).
    :param max_pairs_per_connection: most pairs on one WebSocket connection.
    :param subscribe_batch: most symbols in one subscribe request.
    :param rest_min_interval: seconds between two REST calls (Kraken allows about 1/s).
    :param backfill_since_ns: also publish each pair's history from this time (epoch ns) on.
    :param backfill_only: publish the history up to now, then stop (no WebSocket).
    :param backfill_deadline: `backfill_only`: seconds the history may take.
    :param max_gap: `FeedConfig.max_gap`; :param max_held: `FeedConfig.max_held`;
        :param max_held_bytes: `FeedConfig.max_held_bytes`;
        :param repair_timeout: `FeedConfig.repair_timeout`.
    :param stale_after: seconds without a live trade of a pair before its subscription is
        checked (0: never).
    :param stats_interval: seconds between two summary lines in the log.
    :param max_message: most bytes of one WebSocket message (a longer one: a reconnect).
    :param max_body: most bytes of one REST answer (a longer one: a failed call).
    :param shutdown_timeout: seconds the application waits for the source to stop.
    :param topic_config: how the source topic is created (None: the broker's defaults).
    """

    pairs: tuple[str, ...]
    optional_pairs: frozenset[str] = frozenset()
    name: str = "kraken-trades"
    ws_url: str = KRAKEN_WS_URL
    rest_url: str | None = KRAKEN_REST_URL
    snapshot: bool = True
    decimal_strings: bool = False
    heartbeat_timeout: float = 10.0
    connect_timeout: float = 10.0
    max_backoff: float = 60.0
    healthy_after: float = 30.0
    connect_spacing: float = CONNECT_SPACING
    max_pairs_per_connection: int = 100
    subscribe_batch: int = 50
    rest_min_interval: float = FeedConfig.rest_interval
    backfill_since_ns: int | None = None
    backfill_only: bool = False
    backfill_deadline: float | None = None
    max_gap: int = FeedConfig.max_gap
    max_held: int = FeedConfig.max_held
    max_held_bytes: int = FeedConfig.max_held_bytes
    repair_timeout: float = FeedConfig.repair_timeout
    stale_after: float = FeedConfig.stale_after
    stats_interval: float = 30.0
    max_message: int = MAX_MESSAGE
    max_body: int = MAX_BODY
    shutdown_timeout: float = 10.0
    topic_config: Any = None  # quixstreams TopicConfig

    def __post_init__(self) -> None:
        pairs = parse_pairs(",".join(self.pairs)) if self.pairs else ()
        if not pairs:
            raise ConfigError("pairs: no pair given")
        if has_patterns(pairs):
            raise ConfigError("pairs: resolve all and patterns first (instruments.resolve_pairs)")
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "optional_pairs", frozenset(self.optional_pairs) & set(pairs))
        positive = (
            "heartbeat_timeout",
            "connect_timeout",
            "stats_interval",
            "max_message",
            "max_body",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be greater than 0")
        if self.max_pairs_per_connection < 1 or self.subscribe_batch < 1:
            raise ConfigError("max_pairs_per_connection and subscribe_batch must be >= 1")
        if self.backfill_only and self.backfill_since_ns is None:
            raise ConfigError("backfill_only needs backfill_since")
        if (self.backfill_only or self.backfill_since_ns is not None) and not self.rest_url:
            raise ConfigError("a backfill needs kraken_rest_url")

    def feed(self) -> FeedConfig:
        """The core's part."""
        return FeedConfig(
            pairs=self.pairs,
            repair=bool(self.rest_url),
            max_gap=self.max_gap,
            max_held=self.max_held,
            max_held_bytes=self.max_held_bytes,
            repair_timeout=self.repair_timeout,
            backfill_since_ns=self.backfill_since_ns,
            stale_after=0.0 if self.backfill_only or not self.stale_after else self.stale_after,
            rest_interval=self.rest_min_interval,
        )
