"""Every setting, any text (hypothesis): it parses to a value within the range the one list
documents, or fails with a `ConfigError` naming the variable (exit 2 in the pipelines) —
never a value outside the range. Python's readers take `inf`, `nan`, `1e-9`, `1_000` and
other scripts' digits (`int("\u0663") == 3`): the cases below mix those in.

The ranges are checked here from the variables' documented bounds, written apart from the
parsing code, so a kind that lets a value through is caught.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.app import kinds
from sources.app.settings import ConfigError, TradesSettings, warn_plain_text
from sources.app.variables import AUDIT, CANDLES, TRADES, Variable
from sources.audit.settings import OWN_READERS, AuditSettings, UsageError
from sources.candles.settings import CandlesSettings
from tests.support.examples import examples

SETTINGS: dict[str, type] = {
    "trades": TradesSettings,
    "candles": CandlesSettings,
    "audit": AuditSettings,
}
VARIABLES = [
    pytest.param(app, variable, id=f"{app}:{variable.name}")
    for app, variables in (("trades", TRADES), ("candles", CANDLES), ("audit", AUDIT))
    for variable in variables
    if variable.setting
]
# read by the audit itself, into other values (its pairs selection, epoch milliseconds)
OWN = {("audit", name) for name in OWN_READERS}
TOPIC = re.compile(r"[A-Za-z0-9._-]+")
SPEC = re.compile(r"(?:[A-Z0-9]{1,16}|\*)/(?:[A-Z0-9]{1,16}|\*)|all")


def _url(schemes: tuple[str, ...]) -> Callable[[Variable, Any], bool]:
    def valid(variable: Variable, value: Any) -> bool:
        scheme, _, rest = value.partition("://")
        return scheme.lower() in schemes and bool(rest) and value.isascii() and " " not in value

    return valid


def _number(variable: Variable, value: Any, scale: float = 1) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and variable.low * scale <= value <= variable.high * scale
    )


def _host(variable: Variable, value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value.isascii() and 0 < len(value) <= 253 and re.fullmatch(r"[\w.-]+", value)
    return True


def _plain(value: Any) -> bool:
    return isinstance(value, str) and not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)


# What each kind's values must be, from the variable's documented range and options.
WITHIN: dict[kinds.Kind, Callable[[Variable, Any], bool]] = {
    kinds.INTEGER: lambda v, x: isinstance(x, int) and _number(v, x),
    kinds.NUMBER: _number,
    kinds.SECONDS: _number,
    kinds.DURATION: _number,
    kinds.SECONDS_OR_NEVER: lambda v, x: x is None or _number(v, x),
    kinds.AUTO_OR_INTEGER: lambda v, x: x is None or (isinstance(x, int) and _number(v, x)),
    kinds.SECONDS_MS: lambda v, x: isinstance(x, int) and _number(v, x, 1000),
    kinds.RETENTION: lambda v, x: x == -1 or (isinstance(x, int) and _number(v, x, 1000)),
    kinds.SINCE: lambda v, x: isinstance(x, int) and 0 <= x < time.time_ns(),
    kinds.CHOICE: lambda v, x: x in v.options,
    kinds.BOOL: lambda v, x: isinstance(x, bool),
    kinds.NAME: lambda v, x: bool(TOPIC.fullmatch(x)) and len(x) <= 249 and x not in (".", ".."),
    kinds.PAIRS: lambda v, x: bool(x) and all(SPEC.fullmatch(p) for p in x),
    kinds.WS_URL: _url(("ws", "wss")),
    kinds.HTTP_URL: _url(("http", "https")),
    kinds.HOST: _host,
    kinds.BROKERS: lambda v, x: _plain(x) and x.isascii() and " " not in x,
    kinds.MODULES: lambda v, x: _plain(x) and all(":" in i for i in x.split(",") if i.strip()),
    kinds.TEXT: lambda v, x: _plain(x),
    kinds.MOMENT: lambda v, x: _plain(x),  # its app reads the time (the audit's own tests)
}

HOSTILE = [
    "inf", "-inf", "Infinity", "nan", "NaN", "1e-9", "1e3", "1E400", "9" * 400, "1_000",
    "\u0663", "\uff13", "\u0661\u0660", "\U0001d7d7",  # Arabic-Indic, fullwidth, bold digits
    "-1", "-0", "+5", "0", "0.0", ".5", "5.", "0x10", "1,5", "",
    " ", "\t", "\n", "5\n", "\x1b[2J", "true", "FALSE", "yes", "forever", "-1d", "7d", "0s",
    "1w", "100000d", "2d 3h", "2020-01-01", "2020-01-01T00:00:00+02:00", "1969-12-31",
    "2999-01-01", "\u0661\u0669\u0667\u0660-01-01", "ws://127.0.0.1:1/v2", "wss://[::1]:99999/v2", "ws:///v2",
    "http://h", "https://kraken.com", "ftp://x", "127.0.0.1", "::", "0.0.0.0", "a b",
    "localhost:19092", "h:0", "h:65536", "[::1]:9092", "m:f", "m.n:f,x:y", "1m:f", "BTC/USD",
    "*/USD", "all", "btc/usd,eth/usd", "B*C/USD", "trades", "..", "a" * 250,
]  # fmt: skip


def near(variable: Variable) -> list[str]:
    """Texts close to what the variable takes: its default, options and bounds."""
    texts = [variable.default, *variable.options]
    for bound in (variable.low, variable.high):
        if bound is not None:
            texts += [kinds.number_text(bound), repr(bound), kinds.number_text(bound + 1)]
            texts += [kinds.number_text(max(bound - 1, 0)), f"{bound}s", f"-{bound}"]
            texts += [kinds.duration_text(bound) if bound else "0s"]
    return texts


ANY_TEXT = st.one_of(
    st.text(),
    st.from_regex(r"\A[-+]?[0-9\u0663]{1,8}(?:\.[0-9]{0,3})?(?:e-?[0-9])? ?[smhdwx]?\Z"),
    st.floats().map(str),
    st.integers().map(str),
)


def check(app: str, variable: Variable, raw: str) -> None:
    """`raw` is a value in range or an error naming the variable, alone and in the settings."""
    try:
        value = variable.parse(raw)
    except ConfigError as exc:
        assert str(exc).startswith(f"{variable.name}: "), exc
        if variable.kind is not kinds.PAIRS:  # parse_pairs says what is wrong its own way
            assert variable.accepted in str(exc)
    else:
        if variable.default or value != variable.kind.empty:  # else: optional, and unset
            assert WITHIN[variable.kind](variable, value), (raw, value)
    try:
        settings = SETTINGS[app].from_env({variable.name: raw})
    except (ConfigError, UsageError) as exc:  # the audit's usage error (exit 2, too)
        assert variable.name.lower() in str(exc).lower(), exc
        return
    if (app, variable.name) in OWN:
        return
    if variable.attribute is not None and variable.kind is not kinds.SINCE:  # SINCE: now moves
        assert getattr(settings, variable.attribute) == variable.parse(raw)


def test_every_kind_in_the_lists_has_its_range_checked_here() -> None:
    assert {v.kind for v in (*TRADES, *CANDLES, *AUDIT)} <= set(WITHIN)


@pytest.mark.parametrize(("app", "variable"), VARIABLES)
def test_hostile_texts_are_values_in_range_or_errors_naming_the_variable(
    app: str, variable: Variable
) -> None:
    for raw in HOSTILE + near(variable):
        check(app, variable, raw)


@pytest.mark.parametrize(("app", "variable"), VARIABLES)
@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ANY_TEXT)
def test_any_text_is_a_value_in_range_or_an_error_naming_the_variable(
    app: str, variable: Variable, raw: str
) -> None:
    check(app, variable, raw)


@pytest.mark.parametrize(
    "env",
    [
        {"repair_timeout": "inf"},
        {"heartbeat_timeout": "nan"},
        {"stats_interval": "1e-9"},
        {"max_held": "1_000"},
        {"shards": "\u0663"},  # Arabic-Indic 3: int() takes it
        {"backfill_since": "-7d"},
        {"backfill_deadline": "-6h", "backfill_since": "1d", "backfill_only": "true"},
        {"stale_after": "-1"},
        {"retention": "-30d"},
        {"max_ws_message_mb": "0"},
        {"metrics_host": "every interface"},
    ],
)
def test_what_python_would_take_is_refused(env: dict[str, str]) -> None:
    name = next(iter(env))
    with pytest.raises(ConfigError, match=rf"^{name}: expected .*; got "):
        TradesSettings.from_env(env)


def test_a_candle_shorter_than_a_millisecond_once_rounded_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^candle_seconds: expected seconds from 0\.001"):
        CandlesSettings.from_env({"candle_seconds": "0.0004"})
    assert CandlesSettings.from_env({"candle_seconds": "0.0015"}).candle_ms == 2


def test_a_secret_is_never_quoted_in_an_error() -> None:
    env = {
        "broker_security_protocol": "sasl_plaintext",
        "broker_sasl_username": "u",
        "broker_sasl_password": "hunter2\n",
    }
    TradesSettings.from_env(env)  # the newline is at the end: stripped
    with pytest.raises(ConfigError) as refused:
        TradesSettings.from_env({**env, "broker_sasl_password": "hun\nter2"})
    assert "hun" not in str(refused.value) and "not shown" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("ws://ws.example.com/v2", True),
        ("http://api.example.com", True),
        ("ws://127.0.0.1:8080/v2", False),
        ("http://localhost:1", False),
        ("ws://[::1]:8080/v2", False),
        ("wss://ws.kraken.com/v2", False),
    ],
)
def test_a_plain_text_url_off_this_machine_is_warned_about_once(
    url: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            warn_plain_text(url, "kraken_ws_url")
    lines = [r for r in caplog.records if "plain text" in r.getMessage()]
    assert len(lines) == (1 if warned else 0)
    if warned:
        assert lines[0].levelno == logging.WARNING and url in lines[0].getMessage()


def test_the_settings_warn_about_both_plain_text_urls(caplog: pytest.LogCaptureFixture) -> None:
    env = {"kraken_ws_url": "ws://plain.example/v2", "kraken_rest_url": "http://plain.example"}
    with caplog.at_level(logging.WARNING):
        TradesSettings.from_env(env)
    assert "kraken_ws_url is ws://plain.example/v2: plain text" in caplog.text
    assert "kraken_rest_url is http://plain.example: plain text" in caplog.text
