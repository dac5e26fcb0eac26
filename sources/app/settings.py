"""Settings of the trades pipeline, read from environment variables (names case-insensitive).

Every value is read by its variable in the one list (`variables.TRADES`: kind, range,
default); this module adds only what concerns several variables at once, and the defaults
of `TradesSettings` are the list's.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..kraken.config import ConfigError, parse_pairs
from .broker_security import BrokerSecurity
from .variables import DEPRECATED, TRADES, Variable

__all__ = [
    "ConfigError",
    "SettingsReader",
    "TradesSettings",
    "env_lookup",
    "parse_pairs",
    "parse_since",
    "warn_plain_text",
]

logger = logging.getLogger(__name__)

PLAIN_TEXT_SCHEMES = ("ws", "http")
_warned_plain_text: set[str] = set()


def env_lookup(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with lower-cased names, so `PAIRS` and `pairs` both count."""
    environ = os.environ if environ is None else environ
    return {name.lower(): value for name, value in environ.items()}


def parse_since(raw: str, *, setting: str = "backfill_since") -> int:
    """`7d`, `12h`, `30m` (before now) or an ISO-8601 time in the past -> epoch ns, by the
    rules of `backfill_since`.

    :raises ConfigError: naming `setting`, for a blank or wrong `raw`.
    """
    variable = replace(next(v for v in TRADES if v.name == "backfill_since"), name=setting)
    since_ns = variable.parse(raw)
    if since_ns is None:
        raise ConfigError(f"{setting}: expected {variable.accepted.removeprefix('empty, or ')}")
    return since_ns


def warn_deprecated(env: Mapping[str, str]) -> None:
    """A WARNING for each setting that is read no more (`variables.DEPRECATED`)."""
    for name, instead in DEPRECATED.items():
        if env.get(name, "").strip():
            logger.warning("Setting %s is deprecated and ignored: %s", name, instead)


def warn_plain_text(url: str, setting: str) -> None:
    """A WARNING, once per URL, for a ws:// or http:// Kraken URL off this machine: neither
    encrypted nor checked, anything on the way can read or change what Kraken sends."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in PLAIN_TEXT_SCHEMES or _is_loopback(parts.hostname or ""):
        return
    if url in _warned_plain_text:
        return
    _warned_plain_text.add(url)
    logger.warning(
        "%s is %s: plain text, not encrypted, and the server is not checked (use %ss://)",
        setting,
        url,
        parts.scheme.lower(),
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsReader:
    """A pipeline's environment read against its list of variables (`variables.py`).

    :param variables: the pipeline's variables (names, defaults, kinds, ranges).
    :param environ: the environment; names are case-insensitive.
    """

    def __init__(self, variables: tuple[Variable, ...], environ: Mapping[str, str] | None) -> None:
        self.env = env_lookup(environ)
        self.variables = {v.name.lower(): v for v in variables}

    def value(self, name: str) -> Any:
        """The value of `name` (any case), its default when unset or blank.

        :raises ConfigError: naming it, when its text is not what it accepts.
        """
        return self.variables[name.lower()].parse(self.env.get(name.lower(), ""))

    def values(self) -> dict[str, Any]:
        """Every setting that is a field of its own, by field name, in the list's order."""
        return {
            v.attribute: self.value(v.name)
            for v in self.variables.values()
            if v.setting and v.attribute is not None
        }

    def broker_security(self) -> BrokerSecurity:
        """The `broker_*` settings (SASL, TLS)."""
        return BrokerSecurity.from_settings(self.value, self.value)


def defaults(variables: tuple[Variable, ...]) -> dict[str, Any]:
    """Each setting's default value, by field name (`broker_security` included)."""
    reader = SettingsReader(variables, {})
    return {**reader.values(), "broker_security": reader.broker_security()}


_DEFAULT = defaults(TRADES)


@dataclass(frozen=True)
class TradesSettings:
    """Everything `pipelines/trades` reads from its environment; see docs/configuration.md.
    The defaults are the list's (`variables.TRADES`)."""

    broker_address: str = _DEFAULT["broker_address"]
    output: str = _DEFAULT["output"]
    gaps_output: str = _DEFAULT["gaps_output"]
    pairs: tuple[str, ...] = _DEFAULT["pairs"]
    shards: int = _DEFAULT["shards"]
    shard: int = _DEFAULT["shard"]
    kraken_ws_url: str = _DEFAULT["kraken_ws_url"]
    snapshot: bool = _DEFAULT["snapshot"]
    heartbeat_timeout: float = _DEFAULT["heartbeat_timeout"]
    max_pairs_per_connection: int = _DEFAULT["max_pairs_per_connection"]
    subscribe_batch: int = _DEFAULT["subscribe_batch"]
    stale_after: float | None = _DEFAULT["stale_after"]
    stats_interval: float = _DEFAULT["stats_interval"]
    consumer_group: str = _DEFAULT["consumer_group"]
    embedded_broker: str = _DEFAULT["embedded_broker"]
    loglevel: str = _DEFAULT["loglevel"]
    kraken_rest_url: str = _DEFAULT["kraken_rest_url"]
    backfill_since_ns: int | None = _DEFAULT["backfill_since_ns"]
    backfill_only: bool = _DEFAULT["backfill_only"]
    backfill_deadline: float | None = _DEFAULT["backfill_deadline"]
    processing_guarantee: str = _DEFAULT["processing_guarantee"]
    max_gap: int = _DEFAULT["max_gap"]
    max_held: int = _DEFAULT["max_held"]
    max_held_mb: int = _DEFAULT["max_held_mb"]
    repair_timeout: float = _DEFAULT["repair_timeout"]
    max_ws_message_mb: int = _DEFAULT["max_ws_message_mb"]
    max_rest_body_mb: int = _DEFAULT["max_rest_body_mb"]
    partitions: int = _DEFAULT["partitions"]
    retention_ms: int = _DEFAULT["retention_ms"]
    decimal_strings: bool = _DEFAULT["decimal_strings"]
    metrics_port: int = _DEFAULT["metrics_port"]
    metrics_host: str = _DEFAULT["metrics_host"]
    broker_timeout: float = _DEFAULT["broker_timeout"]
    transforms: str = _DEFAULT["transforms"]
    replication: int | None = _DEFAULT["replication"]
    broker_security: BrokerSecurity = _DEFAULT["broker_security"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TradesSettings:
        """Read and validate every setting; raises `ConfigError` naming the first bad one."""
        reader = SettingsReader(TRADES, environ)
        warn_deprecated(reader.env)
        values = reader.values()
        check_together(values)
        settings = cls(**values, broker_security=reader.broker_security())
        warn_plain_text(settings.kraken_ws_url, "kraken_ws_url")
        warn_plain_text(settings.kraken_rest_url, "kraken_rest_url")
        return settings


def check_together(values: Mapping[str, Any]) -> None:
    """The rules between settings, each valid on its own.

    :raises ConfigError: naming the setting that does not fit the others.
    """
    if values["backfill_only"] and values["backfill_since_ns"] is None:
        raise ConfigError("backfill_only: true needs backfill_since (e.g. 7d)")
    if values["backfill_deadline"] is not None and not values["backfill_only"]:
        raise ConfigError("backfill_deadline: applies to backfill_only: true only")
    if values["gaps_output"] == values["output"]:
        raise ConfigError(f"gaps_output: must differ from output, both are {values['output']!r}")
    shards = values["shards"]
    if values["shard"] >= shards:
        raise ConfigError(
            f"shard: expected a whole number from 0 to shards-1 = {shards - 1} "
            f"(shards={shards}), got {values['shard']}"
        )
