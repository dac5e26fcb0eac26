"""The audit's settings: command-line options, each defaulting to its environment variable.

One list, `sources/app/variables.py` (`AUDIT`), names them: `gaps_input` is the variable and
`--gaps-input` the option. The Quix Job sets variables; a person types options; an option wins
over its variable. Times are epoch milliseconds, like the topic's `timestamp_ms`.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..app.variables import AUDIT
from .pairs import PairSelection, UsageError

__all__ = ["EXIT_CODES", "AuditSettings", "UsageError", "parse_moment"]

BROKER_VARIABLE = "Quix__Broker__Address"
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXIT_CODES = (
    "exit codes: 0 nothing wrong (explained holes are listed; they fail only with --strict); "
    "1 something unexplained was found; 2 a usage error, or the broker, the topic or Kraken's "
    "REST API could not be reached (the report then says what was checked)"
)
# Aliases people reach for; the canonical option is the variable's name.
ALIASES = {"input": ["--topic"], "gaps_input": ["--gaps"]}
BOOLEANS = ("verify_rest", "strict", "json")
METAVARS = {
    "input": "TOPIC",
    "gaps_input": "TOPIC",
    "pairs": "PAIRS",
    "since": "TIME",
    "until": "TIME",
    "kraken_rest_url": "URL",
    "rest_interval": "SECONDS",
    "idle_timeout": "SECONDS",
    "max_findings": "N",
    "workers": "N",
    "loglevel": "LEVEL",
    BROKER_VARIABLE: "HOST:PORT",
}


def parse_moment(text: str, *, now_ms: int, setting: str) -> int:
    """`now`, a duration before now (`7d`, `12h`, `30m`, `90s`, `2w`) or an ISO-8601 time (UTC
    when it names no zone) -> epoch milliseconds.

    :raises UsageError: naming `setting`.
    """
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    duration = DURATION.fullmatch(value.lower())
    if duration:
        return now_ms - round(float(duration.group(1)) * UNIT_SECONDS[duration.group(2)] * 1000)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{setting}: expected now, a duration (7d, 12h, 30m) or an ISO-8601 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _bool(text: str, setting: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise UsageError(f"{setting}: expected true or false, got {text!r}")


def _number(text: str, setting: str, *, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"{setting}: expected {kind}, got {text!r}") from None
    if not value > 0:
        raise UsageError(f"{setting}: must be greater than 0, got {text!r}")
    return value


def _topic(text: str, setting: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", text):
        raise UsageError(f"{setting}: {text!r} is not a valid topic name")
    return text


@dataclass(frozen=True)
class AuditSettings:
    """Everything the audit reads from its options and variables (see docs/audit.md).

    :param since_ms: first trade time audited (epoch ms, inclusive); None: the topic's start.
    :param until_ms: last trade time audited (inclusive); None: the topic's end.
    :param workers: processes reading the partitions; None: one per CPU available.
    """

    broker_address: str = "localhost:19092"
    input: str = "trades"
    gaps_input: str = "gaps"
    pairs: PairSelection = field(default_factory=lambda: PairSelection(everything=True))
    since_ms: int | None = None
    until_ms: int | None = None
    verify_rest: bool = False
    kraken_rest_url: str = "https://api.kraken.com"
    rest_interval: float = 1.0
    idle_timeout: float = 3.0
    strict: bool = False
    json: bool = False
    max_findings: int = 1000
    workers: int | None = None  # None: auto
    loglevel: str = "INFO"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, now_ms: int | None = None
    ) -> AuditSettings:
        """The settings from variables alone (the Quix Job's way).

        :raises UsageError: naming the first bad variable.
        """
        return cls.parse([], environ, now_ms=now_ms)

    @classmethod
    def parse(
        cls,
        argv: Sequence[str],
        environ: Mapping[str, str] | None = None,
        *,
        now_ms: int | None = None,
    ) -> AuditSettings:
        """Options over variables over defaults.

        :raises UsageError: naming the first bad option or variable.
        :raises SystemExit: for `--help` (0) and for options argparse cannot read (2).
        """
        env = {k.lower(): v for k, v in (os.environ if environ is None else environ).items()}
        texts = {v.name: env.get(v.name.lower(), "").strip() or v.default for v in AUDIT}
        options = vars(build_parser(texts).parse_args(list(argv)))
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        text = {v.name: options[_dest(v.name)] for v in AUDIT}
        since = parse_moment(text["since"], now_ms=now, setting="since") if text["since"] else None
        until = parse_moment(text["until"], now_ms=now, setting="until") if text["until"] else None
        if since is not None and until is not None and since > until:
            raise UsageError(f"until: {text['until']!r} is before since ({text['since']!r})")
        rest_url = text["kraken_rest_url"]
        if not rest_url.startswith(("http://", "https://")):
            raise UsageError(f"kraken_rest_url: expected an http(s):// URL, got {rest_url!r}")
        loglevel = text["loglevel"].upper()
        if loglevel not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise UsageError(f"loglevel: expected DEBUG, INFO, WARNING or ERROR, got {loglevel!r}")
        flags = {name: _flag(text[name], name) for name in BOOLEANS}
        return cls(
            broker_address=text[BROKER_VARIABLE],
            input=_topic(text["input"], "input"),
            gaps_input=_topic(text["gaps_input"], "gaps_input"),
            pairs=PairSelection.parse(text["pairs"]),
            since_ms=since,
            until_ms=until,
            kraken_rest_url=rest_url.rstrip("/"),
            rest_interval=_number(text["rest_interval"], "rest_interval"),
            idle_timeout=_number(text["idle_timeout"], "idle_timeout"),
            max_findings=int(_number(text["max_findings"], "max_findings", integer=True)),
            workers=None
            if text["workers"].strip().lower() == "auto"
            else int(_number(text["workers"], "workers", integer=True)),
            loglevel=loglevel,
            **flags,
        )


def _flag(value: bool | str, setting: str) -> bool:
    """A boolean option's value: True/False from the command line, text from a variable."""
    return value if isinstance(value, bool) else _bool(value, setting)


def _dest(name: str) -> str:
    return name.lower()


def build_parser(defaults: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line, one option per variable, each defaulting to `defaults[name]`."""
    defaults = defaults or {v.name: v.default for v in AUDIT}
    parser = argparse.ArgumentParser(
        prog="python -m sources.audit",
        description="Audit a trades topic: per pair, every trade once, in order, gap-free, "
        "valid; holes explained by gap events; optionally checked against Kraken's REST API.",
        epilog=EXIT_CODES + ". Every option defaults to the environment variable of its name "
        "(e.g. gaps_input for --gaps-input; Quix__Broker__Address for --broker).",
    )
    for variable in AUDIT:
        name = variable.name
        flag = "--broker" if name == BROKER_VARIABLE else "--" + name.replace("_", "-")
        default = defaults[name]
        help_text = f"{variable.description} (default: {default or 'empty'})"
        if name in BOOLEANS:
            parser.add_argument(
                flag,
                *ALIASES.get(name, []),
                dest=_dest(name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                *ALIASES.get(name, []),
                dest=_dest(name),
                default=default,
                metavar=METAVARS[name],
                help=help_text,
            )
    return parser
