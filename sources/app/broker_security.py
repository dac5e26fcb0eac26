"""SASL and TLS to a self-hosted broker: the `broker_*` settings -> Quix Streams' ConnectionConfig.

Redpanda (and Kafka) clusters outside a laptop usually require SASL (SCRAM-SHA-256/512 or
PLAIN) over TLS. The settings say how; `ConnectionConfig` hands them to every client the
application makes (consumer, producers, admin) and keeps the password out of its log lines.
On Quix Cloud the platform connects the app, and these settings are not used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quixstreams.kafka import ConnectionConfig

from ..kraken.config import ConfigError

__all__ = ["BrokerSecurity"]

SASL_PROTOCOLS = ("sasl_plaintext", "sasl_ssl")
TLS_PROTOCOLS = ("ssl", "sasl_ssl")
TLS_FILES = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")


@dataclass(frozen=True)
class BrokerSecurity:
    """How the clients authenticate to the broker and encrypt the connection.

    :param protocol: plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka's
        `security.protocol`).
    :param sasl_mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with sasl_*).
    :param sasl_username: the SASL user (with sasl_*).
    :param sasl_password: its password (with sasl_*); never shown in a repr or a log line.
    :param ssl_ca_location: CA file to verify the broker's certificate; empty: the system's.
    :param ssl_certificate_location: client certificate, for TLS client authentication.
    :param ssl_key_location: the client certificate's private key.
    """

    protocol: str = "plaintext"
    sasl_mechanism: str = "SCRAM-SHA-256"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_location: str = ""
    ssl_certificate_location: str = ""
    ssl_key_location: str = ""

    @classmethod
    def from_settings(
        cls, text: Callable[[str], str], choice: Callable[[str], str]
    ) -> BrokerSecurity:
        """Read and check the `broker_*` settings.

        :param text: a setting's text by (lower-case) name, its default when unset.
        :param choice: a setting's value among its options (raises `ConfigError` otherwise).
        :raises ConfigError: naming the first setting that is wrong or missing.
        """
        security = cls(
            protocol=choice("broker_security_protocol"),
            sasl_mechanism=choice("broker_sasl_mechanism"),
            sasl_username=text("broker_sasl_username"),
            sasl_password=text("broker_sasl_password"),
            ssl_ca_location=text("broker_ssl_ca_location"),
            ssl_certificate_location=text("broker_ssl_certificate_location"),
            ssl_key_location=text("broker_ssl_key_location"),
        )
        security.check()
        return security

    @property
    def sasl(self) -> bool:
        return self.protocol in SASL_PROTOCOLS

    @property
    def tls(self) -> bool:
        return self.protocol in TLS_PROTOCOLS

    def check(self) -> None:
        """Refuse a combination that would fail at the broker, or send secrets in the clear
        to a broker that does not expect them.

        :raises ConfigError: naming the setting.
        """
        protocol = f"broker_security_protocol is {self.protocol}"
        for name in ("sasl_username", "sasl_password"):
            given = bool(getattr(self, name))
            if self.sasl and not given:
                raise ConfigError(f"broker_{name}: required when {protocol}")
            if given and not self.sasl:
                raise ConfigError(
                    f"broker_{name}: only used with broker_security_protocol sasl_ssl or "
                    f"sasl_plaintext, and {protocol}"
                )
        for name in TLS_FILES:
            location = getattr(self, name)
            if not location:
                continue
            if not self.tls:
                raise ConfigError(
                    f"broker_{name}: only used with broker_security_protocol ssl or sasl_ssl, "
                    f"and {protocol}"
                )
            if not Path(location).is_file():
                raise ConfigError(f"broker_{name}: no file at {location!r}")
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            raise ConfigError(
                "broker_ssl_key_location: a client certificate needs its key, and a key its "
                "certificate (broker_ssl_certificate_location)"
            )

    def connection_config(self, address: str) -> ConnectionConfig:
        """Quix Streams' connection settings for `address` (host:port[,host:port...])."""
        options: dict[str, str] = {"security_protocol": self.protocol}
        if self.sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_username": self.sasl_username,
                "sasl_password": self.sasl_password,
            }
        if self.tls:
            options |= {name: getattr(self, name) for name in TLS_FILES if getattr(self, name)}
        return ConnectionConfig(bootstrap_servers=address, **options)
