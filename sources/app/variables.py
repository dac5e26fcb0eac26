"""The one list of each pipeline's settings: name, default, meaning, and the rules of its value.

`app.yaml`, `quix.yaml`, the settings code and the docs' configuration tables all say the
same thing; `tests/unit/test_variables.py` holds them to this list, so a new setting goes
everywhere at once. Each variable has a kind (`kinds.py`: how its text is read) and, for
numbers and durations, a range: `Variable.parse` refuses anything else with a `ConfigError`
naming the variable and what it accepts, and the docs' table shows the same words
(`python -m sources.app.variables --markdown trades`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..kraken.config import (
    KRAKEN_REST_URL,
    KRAKEN_WS_URL,
    MAX_BODY,
    MAX_MESSAGE,
    ConfigError,
    FeedConfig,
    SourceConfig,
)
from . import kinds
from .broker_security import BrokerSecurity
from .kinds import Invalid, Kind

__all__ = [
    "AUDIT",
    "BROKER_SECURITY",
    "CANDLES",
    "DEPRECATED",
    "TRADES",
    "Variable",
    "markdown_table",
]


@dataclass(frozen=True)
class Variable:
    """One environment variable of a pipeline.

    :param name: its name (read case-insensitively).
    :param default: the default, as text.
    :param description: one line, as app.yaml and the README show it.
    :param input_type: Quix's `inputType`: FreeText, InputTopic or OutputTopic; `Options`
        when `options` are given.
    :param cloud: offered in Quix Cloud (app.yaml, quix.yaml); False for local-only ones.
    :param options: the only values it takes (Quix's `Options` input type); the settings
        code accepts them case-insensitively.
    :param setting: read by the settings code; False for a variable that only user code
        reads (the example transforms).
    :param kind: how its text is read (`kinds.py`).
    :param low: the smallest value it takes (numbers, durations in seconds).
    :param high: the largest value it takes.
    :param attribute: the settings' field it sets (default: the name in lower case); None
        for one read with others into a field (the `broker_*` ones: `broker_security`).
    :param secret: never shown, not even in an error.
    """

    name: str
    default: str
    description: str
    input_type: str = "FreeText"
    cloud: bool = True
    options: tuple[str, ...] = ()
    setting: bool = True
    kind: Kind = kinds.TEXT
    low: float | None = None
    high: float | None = None
    attribute: str | None = ""
    secret: bool = False

    def __post_init__(self) -> None:
        if self.options:
            object.__setattr__(self, "input_type", "Options")
        if self.attribute == "":
            object.__setattr__(self, "attribute", self.name.lower())
        if self.kind.ranged and (self.low is None or self.high is None):
            raise ValueError(f"{self.name}: a {type(self.kind).__name__} needs low and high")
        self.parse(self.default)  # a default the rules refuse is a bug in this list

    @property
    def accepted(self) -> str:
        """What it accepts, in words (errors and the docs' table)."""
        words = self.kind.accepted(self)
        return f"empty, or {words}" if not self.default and self.kind.empty is None else words

    def parse(self, raw: str) -> Any:
        """The value of `raw` (stripped; blank: the default).

        :raises ConfigError: naming the variable and what it accepts.
        """
        text = raw.strip() or self.default.strip()
        if not text:
            return self.kind.empty
        try:
            return self.kind.parse(text, self)
        except Invalid as exc:
            got = "a value that is not shown" if self.secret else _shown(raw)
            detail = f" ({exc})" if str(exc) else ""
            raise ConfigError(f"{self.name}: expected {self.accepted}; got {got}{detail}") from None


def _shown(raw: str, limit: int = 60) -> str:
    """A refused value as an error quotes it: Python's repr, cut when long."""
    return repr(raw) if len(raw) <= limit else f"{raw[:limit]!r}… ({len(raw)} chars)"


YES_NO = ("true", "false")
DAY = 86400.0
YEAR = 365 * DAY


def _text(value: bool | float) -> str:
    """A default of the code (`kraken/config.py`) as a variable's text: each default once."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value)) if float(value).is_integer() else str(value)


# shared by both pipelines
STATS_INTERVAL = Variable(
    "stats_interval",
    _text(SourceConfig.stats_interval),
    "Seconds between two summary lines in the log",
    kind=kinds.SECONDS,
    low=1,
    high=DAY,
)
BROKER_TIMEOUT = Variable(
    "broker_timeout",
    "120",
    "Seconds the broker may be unreachable before the app exits 1",
    kind=kinds.SECONDS,
    low=1,
    high=DAY,
)
LOGLEVEL = Variable(
    "loglevel",
    "INFO",
    "Log level: DEBUG, INFO, WARNING, ERROR",
    options=("DEBUG", "INFO", "WARNING", "ERROR"),
    kind=kinds.CHOICE,
)
REPLICATION = Variable(
    "replication",
    "",
    "Replication factor of the topics this app creates, changelogs included; "
    "empty: the broker's (or Quix Cloud's) default",
    kind=kinds.INTEGER,
    low=1,
    high=100,
)
BROKER_ADDRESS = Variable(
    "Quix__Broker__Address",
    "localhost:19092",
    "Broker address (outside Quix Cloud, where the platform connects the app)",
    cloud=False,
    kind=kinds.BROKERS,
    attribute="broker_address",
)
METRICS_HOST = Variable(
    "metrics_host",
    "0.0.0.0",
    "Address metrics_port listens on: 0.0.0.0 every interface, 127.0.0.1 this machine only",
    kind=kinds.HOST,
)


def metrics_port(default: str) -> Variable:
    return Variable(
        "metrics_port",
        default,
        "Port of /metrics, /healthz and /readyz; 0: off",
        kind=kinds.INTEGER,
        low=0,
        high=65535,
    )


# Connection to a self-hosted broker (Redpanda with SASL and/or TLS). Local only: on Quix
# Cloud the platform connects the app (its SDK token), as with Quix__Broker__Address. Read
# together into the settings' `broker_security` (`broker_security.BrokerSecurity`).
BROKER_SECURITY: tuple[Variable, ...] = (
    Variable(
        "broker_security_protocol",
        BrokerSecurity.protocol,
        "How to talk to the broker: plaintext, ssl (TLS), sasl_plaintext or sasl_ssl",
        cloud=False,
        options=("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"),
        kind=kinds.CHOICE,
        attribute=None,
    ),
    Variable(
        "broker_sasl_mechanism",
        BrokerSecurity.sasl_mechanism,
        "SASL mechanism with sasl_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        cloud=False,
        options=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        kind=kinds.CHOICE,
        attribute=None,
    ),
    Variable(
        "broker_sasl_username", "", "SASL user name (with sasl_*)", cloud=False, attribute=None
    ),
    Variable(
        "broker_sasl_password",
        "",
        "SASL password (with sasl_*); never logged",
        cloud=False,
        attribute=None,
        secret=True,
    ),
    Variable(
        "broker_ssl_ca_location",
        "",
        "CA certificate file (PEM) to check the broker's TLS certificate; empty: the system's",
        cloud=False,
        attribute=None,
    ),
    Variable(
        "broker_ssl_certificate_location",
        "",
        "Client certificate file (PEM), for brokers that require TLS client authentication",
        cloud=False,
        attribute=None,
    ),
    Variable(
        "broker_ssl_key_location",
        "",
        "Private key file (PEM) of the client certificate",
        cloud=False,
        attribute=None,
    ),
)


def consumer_group(default: str) -> Variable:
    return Variable(
        "Quix__Consumer_Group",
        default,
        "Consumer group, and prefix of the state's changelog topics: one per deployment",
        kind=kinds.NAME,
        attribute="consumer_group",
    )


TRADES: tuple[Variable, ...] = (
    Variable(
        "output",
        "trades",
        "Topic the trades are written to (JSON, keyed by pair, event time)",
        "OutputTopic",
        kind=kinds.NAME,
    ),
    Variable(
        "gaps_output",
        "gaps",
        "Topic each gap that cannot be repaired is written to, once (JSON, keyed by pair)",
        "OutputTopic",
        kind=kinds.NAME,
    ),
    Variable(
        "pairs",
        "BTC/USD,ETH/USD",
        "Comma-separated Kraken v2 symbols or patterns (BTC/USD, */USD, BTC/*), or all",
        kind=kinds.PAIRS,
    ),
    Variable(
        "shards",
        "1",
        "Deployments that split the pairs between them (see Scaling out)",
        kind=kinds.INTEGER,
        low=1,
        high=256,
    ),
    Variable(
        "shard",
        "0",
        "Which of the shards this deployment is: 0 .. shards-1",
        kind=kinds.INTEGER,
        low=0,
        high=255,
    ),
    Variable(
        "kraken_ws_url",
        KRAKEN_WS_URL,
        "Kraken WebSocket API v2 endpoint",
        kind=kinds.WS_URL,
    ),
    Variable(
        "snapshot",
        _text(SourceConfig.snapshot),
        "Ask for the last 50 trades per pair on every (re)subscribe (true/false)",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "heartbeat_timeout",
        _text(SourceConfig.heartbeat_timeout),
        "Seconds without any message before the connection is reopened",
        kind=kinds.SECONDS,
        low=1,
        high=3600,
    ),
    Variable(
        "max_pairs_per_connection",
        _text(SourceConfig.max_pairs_per_connection),
        "Most pairs on one WebSocket connection; more pairs open more connections",
        kind=kinds.INTEGER,
        low=1,
        high=10_000,
    ),
    Variable(
        "subscribe_batch",
        _text(SourceConfig.subscribe_batch),
        "Most symbols in one subscribe request",
        kind=kinds.INTEGER,
        low=1,
        high=10_000,
    ),
    Variable(
        "stale_after",
        _text(FeedConfig.stale_after),
        "Seconds without a trade before a pair's subscription is checked (resubscribe); 0: never",
        kind=kinds.SECONDS_OR_NEVER,
        low=1,
        high=DAY,
    ),
    Variable(
        "kraken_rest_url",
        KRAKEN_REST_URL,
        "Kraken REST API, to repair gaps and backfill",
        kind=kinds.HTTP_URL,
    ),
    Variable(
        "backfill_since",
        "",
        "Also publish history from this point on: a duration (7d, 12h, 30m) or an ISO-8601 time",
        kind=kinds.SINCE,
        low=1,
        high=20 * YEAR,  # Kraken's history starts in 2013
        attribute="backfill_since_ns",
    ),
    Variable(
        "backfill_only",
        _text(SourceConfig.backfill_only),
        "With backfill_since: publish the history up to now, then exit (0 only if complete)",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "backfill_deadline",
        "",
        "With backfill_only: longest the history may take (e.g. 6h); past it the run exits 4",
        kind=kinds.DURATION,
        low=1,
        high=YEAR,
    ),
    Variable(
        "max_gap",
        _text(FeedConfig.max_gap),
        "Opt-in cap: a gap of more trades is reported, not repaired (0: repair any gap)",
        kind=kinds.INTEGER,
        low=0,
        high=10**9,
    ),
    Variable(
        "max_held",
        _text(FeedConfig.max_held),
        "Most live trades held per pair behind a repair; past it REST fetches them instead",
        kind=kinds.INTEGER,
        low=1,
        high=10**8,
    ),
    Variable(
        "max_held_mb",
        _text(FeedConfig.max_held_bytes // 2**20),
        "Most memory (MiB) for live trades held behind repairs, all pairs (~480 B a trade)",
        kind=kinds.INTEGER,
        low=1,
        high=65_536,
    ),
    Variable(
        "repair_timeout",
        _text(FeedConfig.repair_timeout),
        "Seconds a REST request may take before it is asked again (a repair never gives up)",
        kind=kinds.SECONDS,
        low=1,
        high=3600,
    ),
    Variable(
        "max_ws_message_mb",
        _text(MAX_MESSAGE // 2**20),
        "Largest WebSocket message read (MiB); a larger one is an ERROR and a reconnect",
        kind=kinds.INTEGER,
        low=1,
        high=1024,
    ),
    Variable(
        "max_rest_body_mb",
        _text(MAX_BODY // 2**20),
        "Largest REST answer read (MiB); a larger one is a failed call, asked again",
        kind=kinds.INTEGER,
        low=1,
        high=1024,
    ),
    Variable(
        "partitions",
        "3",
        "Partitions of the output and gaps topics when created; an existing one must match",
        kind=kinds.INTEGER,
        low=1,
        high=10_000,
    ),
    Variable(
        "retention",
        "forever",
        "How long the output topic keeps trades, for new topics: forever, or e.g. 30d",
        kind=kinds.RETENTION,
        low=1,
        high=100 * YEAR,
        attribute="retention_ms",
    ),
    REPLICATION,
    Variable(
        "decimal_strings",
        _text(SourceConfig.decimal_strings),
        "true: price and volume as exact decimal strings instead of JSON numbers",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "processing_guarantee",
        "at-least-once",
        "at-least-once or exactly-once (see README, Delivery guarantees)",
        options=("at-least-once", "exactly-once"),
        kind=kinds.CHOICE,
    ),
    metrics_port("9108"),
    METRICS_HOST,
    BROKER_TIMEOUT,
    STATS_INTERVAL,
    Variable(
        "transforms",
        "",
        "Your dataframe steps, comma-separated module:function",
        kind=kinds.MODULES,
    ),
    Variable(
        "min_notional",
        "1000",
        "transforms_example:min_notional keeps trades worth at least this (quote currency)",
        setting=False,
        kind=kinds.NUMBER,
        low=0,
        high=10**12,
        attribute=None,
    ),
    consumer_group("kraken-trades"),
    LOGLEVEL,
    BROKER_ADDRESS,
    Variable(
        "embedded_broker",
        "auto",
        "auto: start an in-memory broker when nothing answers on a loopback address; never",
        cloud=False,
        options=("auto", "never"),
        kind=kinds.CHOICE,
    ),
    *BROKER_SECURITY,
)

CANDLES: tuple[Variable, ...] = (
    Variable("input", "trades", "Topic of the trades", "InputTopic", kind=kinds.NAME),
    Variable(
        "output", "candles", "Topic the candles are written to", "OutputTopic", kind=kinds.NAME
    ),
    Variable(
        "candle_seconds",
        "60",
        "Length of a candle in seconds",
        kind=kinds.SECONDS_MS,
        low=0.001,
        high=31 * DAY,
        attribute="candle_ms",
    ),
    Variable(
        "grace_seconds",
        "10",
        "Seconds a window waits for late trades",
        kind=kinds.SECONDS_MS,
        low=0,
        high=DAY,
        attribute="grace_ms",
    ),
    metrics_port("9109"),
    METRICS_HOST,
    REPLICATION,
    STATS_INTERVAL,
    BROKER_TIMEOUT,
    consumer_group("kraken-candles"),
    LOGLEVEL,
    BROKER_ADDRESS,
    *BROKER_SECURITY,
)

# The audit (pipelines/audit, `python -m sources.audit`): each variable is also a command-line
# option of the same name (`gaps_input` -> `--gaps-input`), which wins over the variable.
# The audit reads `pairs`, `since` and `until` itself (its own pairs selection and times);
# the rest with `Variable.parse`.
AUDIT: tuple[Variable, ...] = (
    Variable("input", "trades", "Topic of the trades to audit", "InputTopic", kind=kinds.NAME),
    Variable(
        "gaps_input",
        "gaps",
        "Topic of the pipeline's gap events, which explain holes (skipped if it does not exist)",
        "InputTopic",
        kind=kinds.NAME,
    ),
    Variable(
        "pairs",
        "all",
        "Pairs to audit: Kraken v2 symbols or patterns (BTC/USD, */USD, BTC/*), or all",
        kind=kinds.PAIRS,
    ),
    Variable(
        "since",
        "",
        "Audit trades from this time on: a duration before now (7d, 12h, 30m) or an ISO-8601 time",
        kind=kinds.MOMENT,
    ),
    Variable(
        "until",
        "",
        "Audit trades up to this time (same forms); empty: to the topic's end",
        kind=kinds.MOMENT,
    ),
    Variable(
        "verify_rest",
        "false",
        "true: compare every trade with Kraken's REST Trades and check each hole there",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "kraken_rest_url",
        KRAKEN_REST_URL,
        "Kraken REST API, for verify_rest",
        kind=kinds.HTTP_URL,
    ),
    Variable(
        "rest_interval",
        "1",
        "Seconds between two Kraken REST calls (Kraken allows ~1/s)",
        kind=kinds.SECONDS,
        low=0.001,
        high=3600,
    ),
    Variable(
        "idle_timeout",
        "3",
        "Seconds without a new record after which the topic counts as read to its end",
        kind=kinds.SECONDS,
        low=0.1,
        high=DAY,
    ),
    Variable(
        "strict",
        "false",
        "true: explained holes (with a gap event) fail the audit too",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "json",
        "false",
        "true: print the report as JSON instead of tables",
        options=YES_NO,
        kind=kinds.BOOL,
    ),
    Variable(
        "max_findings",
        "1000",
        "Most findings listed per pair and kind (all are counted)",
        kind=kinds.INTEGER,
        low=1,
        high=10**9,
    ),
    Variable(
        "workers",
        "auto",
        "Processes reading the partitions: a number, or auto (by partitions and CPUs)",
        kind=kinds.AUTO_OR_INTEGER,
        low=1,
        high=1024,
    ),
    LOGLEVEL,
    BROKER_ADDRESS,
)

# Settings that are read no more: name -> what to do instead (a WARNING at start says it).
DEPRECATED: dict[str, str] = {
    "repair_attempts": "a repair never gives up on its own now (waits are reported instead: "
    "see docs on delivery guarantees); remove it",
}


def markdown_table(variables: tuple[Variable, ...]) -> str:
    """The docs' configuration table of `variables`: name, default, what it accepts, meaning."""
    rows = ["| name | default | accepted | meaning |", "|---|---|---|---|"]
    for variable in variables:
        default = f"`{variable.default}`" if variable.default else "*(empty)*"
        accepted = variable.accepted.replace("|", "\\|")
        rows.append(f"| `{variable.name}` | {default} | {accepted} | {variable.description} |")
    return "\n".join(rows)


PIPELINES = {"trades": TRADES, "candles": CANDLES, "audit": AUDIT}


def main(argv: list[str]) -> int:
    """`python -m sources.app.variables --markdown trades`: print the docs' table."""
    if len(argv) != 2 or argv[0] != "--markdown" or argv[1] not in PIPELINES:
        print(f"usage: python -m sources.app.variables --markdown {{{','.join(PIPELINES)}}}")
        return 2
    print(markdown_table(PIPELINES[argv[1]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
