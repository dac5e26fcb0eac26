"""Settings of the candles pipeline, read from environment variables (names case-insensitive)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..app.broker_security import BrokerSecurity
from ..app.settings import (
    ConfigError,
    SettingsReader,
    parse_port,
    parse_replication,
    parse_seconds,
)
from ..app.variables import CANDLES

__all__ = ["CandlesSettings", "ConfigError"]

TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")


def parse_topic(raw: str, *, setting: str) -> str:
    """A Kafka topic name (letters, digits, `.`, `_`, `-`)."""
    if not TOPIC_PATTERN.match(raw):
        raise ConfigError(f"{setting}: {raw!r} is not a valid topic name")
    return raw


def parse_duration_ms(raw: str, *, setting: str, allow_zero: bool = False) -> int:
    """A number of seconds -> whole milliseconds, at least 1 ms (or 0 with `allow_zero`)."""
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{setting}: expected a number of seconds, got {raw!r}") from None
    valid = math.isfinite(seconds) and seconds >= 0
    milliseconds = round(seconds * 1000) if valid else -1
    if milliseconds < (0 if allow_zero else 1):
        bound = "0" if allow_zero else "0.001"
        raise ConfigError(f"{setting}: must be at least {bound} seconds, got {raw!r}")
    return milliseconds


@dataclass(frozen=True)
class CandlesSettings:
    """Everything `pipelines/candles` reads from its environment. See the README."""

    broker_address: str = "localhost:19092"
    consumer_group: str = "kraken-candles"
    input: str = "trades"
    output: str = "candles"
    candle_ms: int = 60_000
    # Kraken trades reach the trades topic in trade_id (hence time) order per pair, so
    # little arrives late; 10 s absorbs clock skew and producers other than ours while
    # delaying each candle by only 10 s of event time.
    grace_ms: int = 10_000
    metrics_port: int = 9109
    stats_interval: float = 30.0
    loglevel: str = "INFO"
    broker_timeout: float = 120.0
    replication: int | None = None
    broker_security: BrokerSecurity = field(default_factory=BrokerSecurity)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CandlesSettings:
        """Read and validate every setting; raises `ConfigError` naming the first bad one."""
        reader = SettingsReader(CANDLES, environ)
        text = reader.text

        input_topic = parse_topic(text("input"), setting="input")
        output_topic = parse_topic(text("output"), setting="output")
        if input_topic == output_topic:
            raise ConfigError(f"output: must differ from input, both are {input_topic!r}")
        return cls(
            broker_address=text("quix__broker__address"),
            consumer_group=text("quix__consumer_group"),
            input=input_topic,
            output=output_topic,
            candle_ms=parse_duration_ms(text("candle_seconds"), setting="candle_seconds"),
            grace_ms=parse_duration_ms(
                text("grace_seconds"),
                setting="grace_seconds",
                allow_zero=True,
            ),
            metrics_port=parse_port(text("metrics_port"), setting="metrics_port"),
            stats_interval=parse_seconds(text("stats_interval"), setting="stats_interval"),
            loglevel=reader.choice("loglevel"),
            broker_timeout=parse_seconds(text("broker_timeout"), setting="broker_timeout"),
            replication=parse_replication(text("replication")),
            broker_security=reader.broker_security(),
        )
