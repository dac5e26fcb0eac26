"""Settings of the candles pipeline, read from environment variables (names case-insensitive).

Every value is read by its variable in the one list (`variables.CANDLES`: kind, range,
default), as the trades pipeline's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..app.broker_security import BrokerSecurity
from ..app.settings import ConfigError, SettingsReader, defaults
from ..app.variables import CANDLES

__all__ = ["CandlesSettings", "ConfigError"]

_DEFAULT = defaults(CANDLES)


@dataclass(frozen=True)
class CandlesSettings:
    """Everything `pipelines/candles` reads from its environment; see docs/configuration.md.
    The defaults are the list's (`variables.CANDLES`).

    Kraken trades reach the trades topic in trade_id (hence time) order per pair, so little
    arrives late: the default grace (10 s) absorbs clock skew and producers other than ours
    while delaying each candle by only 10 s of event time.
    """

    broker_address: str = _DEFAULT["broker_address"]
    consumer_group: str = _DEFAULT["consumer_group"]
    input: str = _DEFAULT["input"]
    output: str = _DEFAULT["output"]
    candle_ms: int = _DEFAULT["candle_ms"]
    grace_ms: int = _DEFAULT["grace_ms"]
    metrics_port: int = _DEFAULT["metrics_port"]
    metrics_host: str = _DEFAULT["metrics_host"]
    stats_interval: float = _DEFAULT["stats_interval"]
    loglevel: str = _DEFAULT["loglevel"]
    broker_timeout: float = _DEFAULT["broker_timeout"]
    replication: int | None = _DEFAULT["replication"]
    broker_security: BrokerSecurity = _DEFAULT["broker_security"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CandlesSettings:
        """Read and validate every setting; raises `ConfigError` naming the first bad one."""
        reader = SettingsReader(CANDLES, environ)
        values = reader.values()
        if values["input"] == values["output"]:
            raise ConfigError(f"output: must differ from input, both are {values['input']!r}")
        return cls(**values, broker_security=reader.broker_security())
