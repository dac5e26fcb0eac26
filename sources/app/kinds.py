"""The kinds of setting: how each reads its text, and the words for what it accepts.

A kind is strict on purpose, because Python's own readers are not: `int("٣")` and
`float("٣")` take Unicode digits, `float` takes `inf`, `nan`, `1e-9` and `1_000`, and a
regular expression's `\\d` matches any script's digits. Numbers here are ASCII digits with
at most one decimal point, no sign, no exponent, no separator; a value outside the
variable's range (`Variable.low` .. `Variable.high`) is refused like a typo. Each `parse`
raises `Invalid`; `Variable.parse` turns it into a `ConfigError` naming the variable and
what it accepts (`accepted`).
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..kraken.config import parse_pairs


class Variable(Protocol):
    """What a kind reads of the variable it parses (`variables.Variable` has it all)."""

    name: str
    low: float | None
    high: float | None
    options: tuple[str, ...]


__all__ = [
    "AUTO_OR_INTEGER",
    "BOOL",
    "BROKERS",
    "CHOICE",
    "DURATION",
    "HOST",
    "HTTP_URL",
    "INTEGER",
    "MODULES",
    "MOMENT",
    "NAME",
    "NUMBER",
    "PAIRS",
    "RETENTION",
    "SECONDS",
    "SECONDS_MS",
    "SECONDS_OR_NEVER",
    "SINCE",
    "TEXT",
    "WS_URL",
    "Invalid",
    "Kind",
    "duration_text",
    "number_text",
]

_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_INTEGER = re.compile(r"[0-9]{1,18}")
_DURATION = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?) ?([smhdw]?)")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_BROKER = re.compile(r"(?:[A-Za-z_]{1,20}://)?(\[[0-9A-Fa-f:.]+\]|[^\[\]:/,]+)(?::([0-9]{1,5}))?")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FOREVER = ("forever", "infinite", "-1")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class Invalid(ValueError):
    """The text is not of the kind, or out of the range; the message (maybe empty) says
    more than the kind's `accepted` words."""


class Kind:
    """How a kind of setting is read.

    :param words: what it accepts, for errors and the docs; `{low}` and `{high}` are the
        variable's range, written by `number_text` (or `duration_text` for durations).
    :param empty: the value of an empty setting, for variables whose default is empty.
    :param ranged: the variable must give `low` and `high`.
    """

    def __init__(self, words: str, *, empty: Any = None, ranged: bool = False) -> None:
        self.words = words
        self.empty = empty
        self.ranged = ranged

    def accepted(self, variable: Variable) -> str:
        """What `variable` accepts, in words."""
        return self.words.format(low=_bound(variable.low), high=_bound(variable.high))

    def parse(self, text: str, variable: Variable) -> Any:
        """The value of `text` (stripped, not empty). :raises Invalid:"""
        raise NotImplementedError


def _bound(bound: float | None) -> str:
    return number_text(bound) if bound is not None else ""


def number_text(value: float) -> str:
    """`3600.0` -> `3600`, `0.5` -> `0.5`, `100000000` -> `100000000` (never `1e+08`)."""
    if float(value).is_integer():
        return str(int(value))
    return format(value, "f").rstrip("0")


def duration_text(seconds: float) -> str:
    """`86400` -> `1d`, `90` -> `90s`: the largest unit that divides it."""
    for unit in ("w", "d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{number_text(seconds)}s"


def _number(text: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise Invalid()
    return float(text)


def _within(value: float, variable: Variable) -> float:
    low, high = variable.low, variable.high
    assert low is not None and high is not None
    if not (math.isfinite(value) and low <= value <= high):
        raise Invalid()
    return value


def _no_controls(text: str) -> str:
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text):
        raise Invalid("control characters")
    return text


class _Text(Kind):
    def parse(self, text: str, variable: Variable) -> str:
        return _no_controls(text)


class _Name(Kind):
    """A topic name, or a consumer group (Quix names changelog topics after it)."""

    def parse(self, text: str, variable: Variable) -> str:
        if not _TOPIC.fullmatch(text) or text in (".", ".."):
            raise Invalid()
        return text


class _Pairs(Kind):
    def parse(self, text: str, variable: Variable) -> tuple[str, ...]:
        if not text.isascii():  # "\u017f".upper() (long s) is "S"
            raise Invalid()
        return parse_pairs(text, setting=variable.name)  # its ConfigError names the setting


class _Integer(Kind):
    def parse(self, text: str, variable: Variable) -> int:
        if not _INTEGER.fullmatch(text):
            raise Invalid()
        return int(_within(int(text), variable))


class _AutoOrInteger(_Integer):
    """`auto` -> None (the app decides), or a whole number in the range."""

    def parse(self, text: str, variable: Variable) -> int | None:
        return None if text.lower() == "auto" else super().parse(text, variable)


class _Number(Kind):
    def parse(self, text: str, variable: Variable) -> float:
        return _within(_number(text), variable)


class _SecondsOrNever(Kind):
    def parse(self, text: str, variable: Variable) -> float | None:
        value = _number(text)
        return None if value == 0 else _within(value, variable)


class _SecondsMs(Kind):
    """Seconds, as whole milliseconds (at least the range's low end, once rounded)."""

    def parse(self, text: str, variable: Variable) -> int:
        seconds = _within(_number(text), variable)
        milliseconds = round(seconds * 1000)
        assert variable.low is not None
        if milliseconds < variable.low * 1000:
            raise Invalid()
        return milliseconds


def _seconds_of(text: str, *, unit: bool = False) -> float:
    """`90s`, `30m`, `6h`, `2d`, `1w`, or (unless `unit` is required) a number of seconds."""
    match = _DURATION.fullmatch(text.lower())
    if not match or (unit and not match.group(2)):
        raise Invalid()
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


class _Duration(Kind):
    def accepted(self, variable: Variable) -> str:
        assert variable.low is not None and variable.high is not None
        return self.words.format(low=duration_text(variable.low), high=duration_text(variable.high))

    def parse(self, text: str, variable: Variable) -> float:
        return _within(_seconds_of(text), variable)


class _Retention(_Duration):
    """`forever` -> -1, a duration -> milliseconds (a topic's `retention.ms`)."""

    def parse(self, text: str, variable: Variable) -> int:
        if text.lower() in FOREVER:
            return -1
        return int(_within(_seconds_of(text, unit=True), variable) * 1000)


class _Since(_Duration):
    """A duration before now, or an ISO-8601 time in the past -> epoch nanoseconds."""

    def parse(self, text: str, variable: Variable) -> int:
        now_ns = time.time_ns()
        if not text.isascii():
            raise Invalid()
        try:
            seconds = _within(_seconds_of(text, unit=True), variable)
        except Invalid:
            pass
        else:
            since_ns = now_ns - int(seconds * 1_000_000_000)
            if since_ns < 0:
                raise Invalid("before 1970")
            return since_ns
        return _past_time_ns(text, now_ns)


def _past_time_ns(text: str, now_ns: int) -> int:
    """An ISO-8601 time (UTC if no zone) after 1970 and before `now_ns`, in epoch ns."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        since_ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    except (ValueError, OverflowError, OSError):
        raise Invalid() from None
    if since_ns >= now_ns:
        raise Invalid("in the future")
    if since_ns < 0:
        raise Invalid("before 1970")
    return since_ns


class _Choice(Kind):
    def accepted(self, variable: Variable) -> str:
        return f"one of {', '.join(variable.options)}"

    def parse(self, text: str, variable: Variable) -> str:
        for option in variable.options:
            if option.lower() == text.lower():
                return option
        raise Invalid()


class _Bool(Kind):
    def parse(self, text: str, variable: Variable) -> bool:
        value = text.lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise Invalid()


class _Url(Kind):
    def __init__(self, words: str, schemes: tuple[str, ...]) -> None:
        super().__init__(words)
        self.schemes = schemes

    def parse(self, text: str, variable: Variable) -> str:
        if not text.isascii() or not text.isprintable() or " " in text:
            raise Invalid()
        try:
            url = urlsplit(text)
            url.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise Invalid() from None
        if url.scheme.lower() not in self.schemes or not url.hostname:
            raise Invalid()
        return text


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text.isascii() and bool(_HOST_NAME.fullmatch(text))
    return True


class _Host(Kind):
    def parse(self, text: str, variable: Variable) -> str:
        if not _is_host(text):
            raise Invalid()
        return text


class _Brokers(Kind):
    """`host:port[,host:port...]` (librdkafka's `bootstrap.servers`)."""

    def parse(self, text: str, variable: Variable) -> str:
        for entry in text.split(","):
            match = _BROKER.fullmatch(entry.strip())
            if not match:
                raise Invalid()
            host, port = match.groups()
            if not _is_host(host.strip("[]")) or (port is not None and not 0 < int(port) < 65536):
                raise Invalid()
        return text


class _Modules(Kind):
    """`module:function[,module:function...]` (imported later, by `transforms`)."""

    def parse(self, text: str, variable: Variable) -> str:
        for item in filter(None, (part.strip() for part in text.split(","))):
            module, _, function = item.partition(":")
            if not function.isidentifier() or not all(
                part.isidentifier() for part in module.split(".")
            ):
                raise Invalid()
        return text


TEXT = _Text("text without control characters", empty="")
NAME = _Name("letters, digits, . _ - (a Kafka topic name)")
PAIRS = _Pairs("Kraken v2 symbols (BTC/USD), patterns (*/USD, BTC/*) or all, comma-separated")
INTEGER = _Integer("a whole number from {low} to {high}", ranged=True)
NUMBER = _Number("a number from {low} to {high}", ranged=True)
SECONDS = _Number("seconds from {low} to {high}", ranged=True)
SECONDS_OR_NEVER = _SecondsOrNever("0 (never), or seconds from {low} to {high}", ranged=True)
SECONDS_MS = _SecondsMs("seconds from {low} to {high}, in whole milliseconds", ranged=True)
DURATION = _Duration("a duration from {low} to {high} (90s, 30m, 6h, 2d)", ranged=True)
RETENTION = _Retention(
    "forever, or a duration from {low} to {high} (with a unit: 12h, 30d)", ranged=True
)
SINCE = _Since(
    "a duration up to {high} (7d, 12h, 30m) or an ISO-8601 time in the past (UTC if no zone)",
    ranged=True,
)
# read by its app (the audit's `since`/`until`: relative to the moment it starts)
MOMENT = _Text("now, a duration before now (7d, 12h, 30m) or an ISO-8601 time (UTC if no zone)")
AUTO_OR_INTEGER = _AutoOrInteger("auto, or a whole number from {low} to {high}", ranged=True)
CHOICE = _Choice("")
BOOL = _Bool("true or false (also 1/0, yes/no, on/off)")
WS_URL = _Url("a ws:// or wss:// URL", ("ws", "wss"))
HTTP_URL = _Url("an http:// or https:// URL", ("http", "https"))
HOST = _Host("an IP address or a host name")
BROKERS = _Brokers("host:port, comma-separated")
MODULES = _Modules("module:function, comma-separated", empty="")
