"""Settings of the trades pipeline, read from environment variables (names case-insensitive)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ConfigError", "TradesSettings", "env_lookup", "parse_bool", "parse_pairs"]

PAIR_PATTERN = re.compile(r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def env_lookup(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with lower-cased names, so `PAIRS` and `pairs` both count."""
    environ = os.environ if environ is None else environ
    return {name.lower(): value for name, value in environ.items()}


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


def parse_choice(raw: str, *, setting: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, compared case-insensitively."""
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{setting}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


@dataclass(frozen=True)
class TradesSettings:
    """Everything `pipelines/trades` reads from its environment. See the README's table."""

    broker_address: str = "localhost:19092"
    output: str = "trades"
    pairs: tuple[str, ...] = ("BTC/USD", "ETH/USD")
    kraken_ws_url: str = "wss://ws.kraken.com/v2"
    snapshot: bool = True
    heartbeat_timeout: float = 10.0
    stats_interval: float = 30.0
    consumer_group: str = "kraken-trades"
    embedded_broker: str = "auto"
    loglevel: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TradesSettings:
        """Read and validate every setting; raises `ConfigError` naming the first bad one."""
        env = env_lookup(environ)
        defaults = cls()

        def text(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        url = text("kraken_ws_url", defaults.kraken_ws_url)
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"kraken_ws_url: expected a ws:// or wss:// URL, got {url!r}")
        output = text("output", defaults.output)
        if not re.match(r"^[A-Za-z0-9._-]+$", output):
            raise ConfigError(f"output: {output!r} is not a valid topic name")
        return cls(
            broker_address=text("quix__broker__address", defaults.broker_address),
            output=output,
            pairs=parse_pairs(text("pairs", ",".join(defaults.pairs))),
            kraken_ws_url=url,
            snapshot=parse_bool(text("snapshot", "true"), setting="snapshot"),
            heartbeat_timeout=parse_seconds(
                text("heartbeat_timeout", str(defaults.heartbeat_timeout)),
                setting="heartbeat_timeout",
            ),
            stats_interval=parse_seconds(
                text("stats_interval", str(defaults.stats_interval)), setting="stats_interval"
            ),
            consumer_group=text("quix__consumer_group", defaults.consumer_group),
            embedded_broker=parse_choice(
                text("embedded_broker", defaults.embedded_broker),
                setting="embedded_broker",
                choices=("auto", "never"),
            ),
            loglevel=text("loglevel", defaults.loglevel).upper(),
        )
