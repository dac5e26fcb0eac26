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
from typing import Any

from ..app.variables import AUDIT, Variable
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
OWN_READERS = ("pairs", "since", "until")  # read here, not by the list's kinds
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
        value = {v.name: _value(v, text[v.name]) for v in AUDIT if v.name not in OWN_READERS}
        since = parse_moment(text["since"], now_ms=now, setting="since") if text["since"] else None
        until = parse_moment(text["until"], now_ms=now, setting="until") if text["until"] else None
        if since is not None and until is not None and since > until:
            raise UsageError(f"until: {text['until']!r} is before since ({text['since']!r})")
        return cls(
            broker_address=value[BROKER_VARIABLE],
            input=value["input"],
            gaps_input=value["gaps_input"],
            pairs=PairSelection.parse(text["pairs"]),
            since_ms=since,
            until_ms=until,
            verify_rest=value["verify_rest"],
            kraken_rest_url=value["kraken_rest_url"],
            rest_interval=value["rest_interval"],
            idle_timeout=value["idle_timeout"],
            strict=value["strict"],
            json=value["json"],
            max_findings=value["max_findings"],
            workers=value["workers"],
            loglevel=value["loglevel"],
        )


def _value(variable: Variable, text: bool | str) -> Any:
    """A variable's value by the one list's rules: True/False as the command line gives a
    boolean option, else its text read by the variable's kind.

    :raises UsageError: naming the variable and what it accepts.
    """
    if isinstance(text, bool):
        return text
    try:
        return variable.parse(text)
    except ValueError as exc:  # the settings list's ConfigError
        raise UsageError(str(exc)) from None


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
