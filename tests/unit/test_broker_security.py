"""SASL and TLS to a self-hosted broker: the `broker_*` settings, and the client configuration
every Kafka client of the application gets from them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from pipelines.candles import main as candles_main
from pipelines.trades import main as trades_main
from sources.app.run import broker_connection
from sources.app.settings import ConfigError, TradesSettings
from sources.candles.settings import CandlesSettings

ADDRESS = "redpanda-0:9092,redpanda-1:9092"
SECRET = "s3cr3t-Pa55"


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def client_config(env: dict[str, str], settings_class=TradesSettings) -> dict[str, str]:
    """The librdkafka settings the application's clients get."""
    settings = settings_class.from_env({"Quix__Broker__Address": ADDRESS, **env})
    return broker_connection(
        settings.broker_address, settings.broker_security, {}
    ).as_librdkafka_dict()


def test_by_default_the_connection_is_plaintext_without_credentials() -> None:
    assert client_config({}) == {"bootstrap.servers": ADDRESS, "security.protocol": "plaintext"}


def test_scram_over_tls_with_a_private_ca(pem: str) -> None:
    config = client_config(
        {
            "broker_security_protocol": "SASL_SSL",  # names and choices are case-insensitive
            "broker_sasl_mechanism": "scram-sha-512",
            "BROKER_SASL_USERNAME": "pipeline",
            "broker_sasl_password": SECRET,
            "broker_ssl_ca_location": pem,
        }
    )
    assert config == {
        "bootstrap.servers": ADDRESS,
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "pipeline",
        "sasl.password": SECRET,
        "ssl.ca.location": pem,
    }


def test_plain_sasl_without_tls_sends_no_tls_setting() -> None:
    config = client_config(
        {
            "broker_security_protocol": "sasl_plaintext",
            "broker_sasl_mechanism": "PLAIN",
            "broker_sasl_username": "u",
            "broker_sasl_password": "p",
        }
    )
    assert config["security.protocol"] == "sasl_plaintext"
    assert config["sasl.mechanism"] == "PLAIN"
    assert not [key for key in config if key.startswith("ssl.")]


def test_scram_sha_256_is_the_default_mechanism_redpanda_creates_users_with() -> None:
    config = client_config(
        {
            "broker_security_protocol": "sasl_ssl",
            "broker_sasl_username": "u",
            "broker_sasl_password": "p",
        }
    )
    assert config["sasl.mechanism"] == "SCRAM-SHA-256"
    assert "ssl.ca.location" not in config  # the system's CAs


def test_tls_client_authentication(pem: str, tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    config = client_config(
        {
            "broker_security_protocol": "ssl",
            "broker_ssl_ca_location": pem,
            "broker_ssl_certificate_location": pem,
            "broker_ssl_key_location": str(key),
        }
    )
    assert config["security.protocol"] == "ssl"
    assert config["ssl.certificate.location"] == pem
    assert config["ssl.key.location"] == str(key)
    assert not [k for k in config if k.startswith("sasl.")]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"broker_security_protocol": "sasl_ssl", "broker_sasl_password": "p"},
            "broker_sasl_username: required",
        ),
        (
            {"broker_security_protocol": "sasl_ssl", "broker_sasl_username": "u"},
            "broker_sasl_password: required",
        ),
        ({"broker_sasl_username": "u"}, "broker_sasl_username: only used with"),
        (
            {"broker_security_protocol": "ssl", "broker_sasl_password": "p"},
            "broker_sasl_password: only used",
        ),
        ({"broker_security_protocol": "tls"}, "broker_security_protocol: expected one of"),
        (
            {
                "broker_security_protocol": "sasl_ssl",
                "broker_sasl_mechanism": "GSSAPI",
                "broker_sasl_username": "u",
                "broker_sasl_password": "p",
            },
            "broker_sasl_mechanism: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        ({"broker_ssl_ca_location": "/etc/hosts"}, "broker_ssl_ca_location: only used with"),
        (
            {"broker_security_protocol": "ssl", "broker_ssl_ca_location": "/nowhere/ca.pem"},
            "broker_ssl_ca_location: no file at '/nowhere/ca.pem'",
        ),
        (
            {"broker_security_protocol": "ssl", "broker_ssl_certificate_location": "/etc/hosts"},
            "broker_ssl_key_location: a client certificate needs its key",
        ),
    ],
)
@pytest.mark.parametrize("settings_class", [TradesSettings, CandlesSettings])
def test_a_wrong_combination_fails_naming_the_setting(env, named: str, settings_class) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(named)}"):
        settings_class.from_env(env)


def test_the_password_shows_in_no_repr_and_no_log_line_of_the_application() -> None:
    env = {
        "Quix__Broker__Address": "127.0.0.1:1",
        "broker_security_protocol": "sasl_plaintext",
        "broker_sasl_username": "u",
        "broker_sasl_password": SECRET,
    }
    settings = TradesSettings.from_env(env)
    assert SECRET not in repr(settings)
    connection = broker_connection(settings.broker_address, settings.broker_security, {})
    assert SECRET not in str(connection)  # what Quix Streams logs as broker_address


@pytest.mark.parametrize(
    ("main", "settings_class"),
    [(trades_main, TradesSettings), (candles_main, CandlesSettings)],
    ids=["trades", "candles"],
)
def test_every_client_of_the_application_gets_the_security_settings(
    main, settings_class, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("Quix__Sdk__Token", raising=False)
    env = {
        "Quix__Broker__Address": "127.0.0.1:1",
        "broker_security_protocol": "sasl_plaintext",
        "broker_sasl_mechanism": "SCRAM-SHA-512",
        "broker_sasl_username": "u",
        "broker_sasl_password": SECRET,
    }
    app = main.make_application(settings_class.from_env(env))
    config = app.config.broker_address.as_librdkafka_dict()
    assert config["sasl.username"] == "u" and config["sasl.password"] == SECRET
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"


def test_on_quix_cloud_the_platform_connects_and_broker_settings_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = TradesSettings.from_env(
        {
            "broker_security_protocol": "sasl_ssl",
            "broker_sasl_username": "u",
            "broker_sasl_password": "p",
        }
    )
    environ = {"Quix__Sdk__Token": "token"}
    with caplog.at_level(logging.WARNING):
        assert broker_connection(settings.broker_address, settings.broker_security, environ) is None
    assert "broker_* settings are ignored" in caplog.text


@pytest.mark.parametrize("settings_class", [TradesSettings, CandlesSettings])
def test_replication_is_empty_for_the_default_or_a_whole_number(settings_class) -> None:
    assert settings_class.from_env({}).replication is None
    assert settings_class.from_env({"replication": " "}).replication is None
    assert settings_class.from_env({"REPLICATION": "3"}).replication == 3
    for bad in ("0", "-1", "three"):
        with pytest.raises(ConfigError, match=r"^replication: "):
            settings_class.from_env({"replication": bad})
