"""Settings of the trades pipeline, read from environment variables (names case-insensitive)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..kraken.config import ConfigError, parse_pairs
from .broker_security import BrokerSecurity
from .variables import DEPRECATED, TRADES, Variable

__all__ = [
    "ConfigError",
    "SettingsReader",
    "TradesSettings",
    "env_lookup",
    "parse_bool",
    "parse_pairs",
    "parse_since",
]


def env_lookup(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with lower-cased names, so `PAIRS` and `pairs` both count."""
    environ = os.environ if environ is None else environ
    return {name.lower(): value for name, value in environ.items()}


def parse_bool(raw: str, *, setting: str) -> bool:
    """true/false, 1/0, yes/no, on/off."""
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{setting}: expected true or false, got {raw!r}")


def parse_seconds(raw: str, *, setting: str, minimum: float = 0.0) -> float:
    """A number of seconds, strictly greater than `minimum`."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{setting}: expected a number of seconds, got {raw!r}") from None
    if not value > minimum:
        raise ConfigError(f"{setting}: must be greater than {minimum:g}, got {raw!r}")
    return value


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

logger = logging.getLogger(__name__)


def parse_duration(raw: str, *, setting: str) -> float:
    """`90s`, `30m`, `6h`, `2d` (or a plain number of seconds) -> seconds, > 0."""
    text = raw.strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", text)
    if not match:
        raise ConfigError(f"{setting}: expected a duration like 90s, 30m, 6h or 2d, got {raw!r}")
    seconds = float(match.group(1)) * DURATION_UNITS.get(match.group(2) or "s", 1)
    if seconds <= 0:
        raise ConfigError(f"{setting}: must be longer than 0, got {raw!r}")
    return seconds


def parse_non_negative_int(raw: str, *, setting: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{setting}: expected a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{setting}: must be 0 or more, got {raw!r}")
    return value


def warn_deprecated(env: Mapping[str, str]) -> None:
    """A WARNING for each setting that is read no more (`variables.DEPRECATED`)."""
    for name, instead in DEPRECATED.items():
        if env.get(name, "").strip():
            logger.warning("Setting %s is deprecated and ignored: %s", name, instead)


def parse_since(raw: str, *, setting: str = "backfill_since", now_ns: int | None = None) -> int:
    """`7d`, `12h`, `30m` (before now) or an ISO-8601 time (UTC if no zone) -> epoch ns."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = raw.strip()
    duration = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text.lower())
    if duration:
        seconds = float(duration.group(1)) * DURATION_UNITS[duration.group(2)]
        return now_ns - int(seconds * 1_000_000_000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{setting}: expected a duration like 7d/12h/30m or an ISO-8601 time, got {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    since_ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    if since_ns >= now_ns:
        raise ConfigError(f"{setting}: {raw!r} is in the future")
    return since_ns


def parse_retention(raw: str, *, setting: str = "retention") -> int:
    """`forever` (or -1) -> -1; a duration like `30d`, `12h` -> milliseconds."""
    text = raw.strip().lower()
    if text in ("forever", "-1", "infinite"):
        return -1
    duration = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not duration:
        raise ConfigError(f"{setting}: expected forever or a duration like 30d/12h, got {raw!r}")
    millis = int(float(duration.group(1)) * DURATION_UNITS[duration.group(2)] * 1000)
    if millis <= 0:
        raise ConfigError(f"{setting}: must be longer than 0, got {raw!r}")
    return millis


def parse_positive_int(raw: str, *, setting: str) -> int:
    """A whole number greater than zero."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{setting}: expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{setting}: must be greater than 0, got {raw!r}")
    return value


def parse_int_range(raw: str, *, setting: str, low: int, high: int) -> int:
    """A whole number from `low` to `high` (inclusive)."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{setting}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{setting}: must be from {low} to {high}, got {raw!r}")
    return value


def parse_port(raw: str, *, setting: str) -> int:
    """A TCP port, or 0 for off."""
    return parse_int_range(raw, setting=setting, low=0, high=65535)


def parse_seconds_or_never(raw: str, *, setting: str) -> float | None:
    """A number of seconds > 0, or 0 for never (None)."""
    if raw.strip() in ("0", "0.0"):
        return None
    return parse_seconds(raw, setting=setting)


def parse_topic_name(raw: str, *, setting: str) -> str:
    """A Kafka topic name (letters, digits, `.`, `_`, `-`)."""
    if not re.match(r"^[A-Za-z0-9._-]+$", raw):
        raise ConfigError(f"{setting}: {raw!r} is not a valid topic name")
    return raw


def parse_choice(raw: str, *, setting: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, compared case-insensitively, as `choices` spells it."""
    value = raw.strip().lower()
    for choice in choices:
        if choice.lower() == value:
            return choice
    raise ConfigError(f"{setting}: expected one of {', '.join(choices)}, got {raw!r}")


def parse_replication(raw: str, *, setting: str = "replication") -> int | None:
    """Empty: the broker's (or platform's) default (None); else a whole number > 0."""
    if not raw.strip():
        return None
    return parse_positive_int(raw, setting=setting)


class SettingsReader:
    """A pipeline's environment read against its list of variables (`variables.py`).

    :param variables: the pipeline's variables (names, defaults, options).
    :param environ: the environment; names are case-insensitive.
    """

    def __init__(self, variables: tuple[Variable, ...], environ: Mapping[str, str] | None) -> None:
        self.env = env_lookup(environ)
        self.variables = {v.name.lower(): v for v in variables}

    def text(self, name: str) -> str:
        """The value of `name`, stripped; its default when unset or blank."""
        return self.env.get(name, "").strip() or self.variables[name].default

    def choice(self, name: str) -> str:
        """The value of `name` among its options (raises `ConfigError` otherwise)."""
        return parse_choice(self.text(name), setting=name, choices=self.variables[name].options)

    def broker_security(self) -> BrokerSecurity:
        """The `broker_*` settings (SASL, TLS)."""
        return BrokerSecurity.from_settings(self.text, self.choice)


@dataclass(frozen=True)
class TradesSettings:
    """Everything `pipelines/trades` reads from its environment. See the README's table."""

    broker_address: str = "localhost:19092"
    output: str = "trades"
    gaps_output: str = "gaps"
    pairs: tuple[str, ...] = ("BTC/USD", "ETH/USD")
    shards: int = 1
    shard: int = 0
    kraken_ws_url: str = "wss://ws.kraken.com/v2"
    snapshot: bool = True
    heartbeat_timeout: float = 10.0
    max_pairs_per_connection: int = 100
    subscribe_batch: int = 50
    stale_after: float | None = 120.0
    stats_interval: float = 30.0
    consumer_group: str = "kraken-trades"
    embedded_broker: str = "auto"
    loglevel: str = "INFO"
    kraken_rest_url: str = "https://api.kraken.com"
    backfill_since_ns: int | None = None
    backfill_only: bool = False
    backfill_deadline: float | None = None
    processing_guarantee: str = "at-least-once"
    max_gap: int = 0
    max_held: int = 100_000
    max_held_mb: int = 128
    repair_timeout: float = 60.0
    partitions: int = 3
    retention_ms: int = -1
    decimal_strings: bool = False
    metrics_port: int = 9108
    broker_timeout: float = 120.0
    transforms: str = ""
    replication: int | None = None
    broker_security: BrokerSecurity = field(default_factory=BrokerSecurity)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TradesSettings:
        """Read and validate every setting; raises `ConfigError` naming the first bad one."""
        reader = SettingsReader(TRADES, environ)
        text, choice = reader.text, reader.choice

        url = text("kraken_ws_url")
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"kraken_ws_url: expected a ws:// or wss:// URL, got {url!r}")
        rest_url = text("kraken_rest_url")
        if not rest_url.startswith(("http://", "https://")):
            raise ConfigError(f"kraken_rest_url: expected an http(s):// URL, got {rest_url!r}")
        since = text("backfill_since")
        backfill_since_ns = parse_since(since) if since else None
        backfill_only = parse_bool(text("backfill_only"), setting="backfill_only")
        if backfill_only and backfill_since_ns is None:
            raise ConfigError("backfill_only: true needs backfill_since (e.g. 7d)")
        deadline = text("backfill_deadline")
        backfill_deadline = (
            parse_duration(deadline, setting="backfill_deadline") if deadline else None
        )
        if backfill_deadline is not None and not backfill_only:
            raise ConfigError("backfill_deadline: applies to backfill_only: true only")
        warn_deprecated(reader.env)
        output = parse_topic_name(text("output"), setting="output")
        gaps_output = parse_topic_name(text("gaps_output"), setting="gaps_output")
        if gaps_output == output:
            raise ConfigError(f"gaps_output: must differ from output, both are {output!r}")
        shards = parse_positive_int(text("shards"), setting="shards")
        shard = parse_int_range(text("shard"), setting="shard", low=0, high=shards - 1)
        return cls(
            broker_address=text("quix__broker__address"),
            output=output,
            gaps_output=gaps_output,
            pairs=parse_pairs(text("pairs")),
            shards=shards,
            shard=shard,
            kraken_ws_url=url,
            snapshot=parse_bool(text("snapshot"), setting="snapshot"),
            heartbeat_timeout=parse_seconds(
                text("heartbeat_timeout"),
                setting="heartbeat_timeout",
            ),
            max_pairs_per_connection=parse_positive_int(
                text("max_pairs_per_connection"), setting="max_pairs_per_connection"
            ),
            subscribe_batch=parse_positive_int(text("subscribe_batch"), setting="subscribe_batch"),
            stale_after=parse_seconds_or_never(text("stale_after"), setting="stale_after"),
            stats_interval=parse_seconds(text("stats_interval"), setting="stats_interval"),
            consumer_group=text("quix__consumer_group"),
            embedded_broker=choice("embedded_broker"),
            loglevel=choice("loglevel"),
            kraken_rest_url=rest_url,
            backfill_since_ns=backfill_since_ns,
            backfill_only=backfill_only,
            backfill_deadline=backfill_deadline,
            processing_guarantee=choice("processing_guarantee"),
            max_gap=parse_non_negative_int(text("max_gap"), setting="max_gap"),
            max_held=parse_positive_int(text("max_held"), setting="max_held"),
            max_held_mb=parse_positive_int(text("max_held_mb"), setting="max_held_mb"),
            repair_timeout=parse_seconds(text("repair_timeout"), setting="repair_timeout"),
            partitions=parse_positive_int(text("partitions"), setting="partitions"),
            retention_ms=parse_retention(text("retention")),
            decimal_strings=parse_bool(text("decimal_strings"), setting="decimal_strings"),
            metrics_port=parse_port(text("metrics_port"), setting="metrics_port"),
            broker_timeout=parse_seconds(text("broker_timeout"), setting="broker_timeout"),
            transforms=text("transforms"),
            replication=parse_replication(text("replication")),
            broker_security=reader.broker_security(),
        )
