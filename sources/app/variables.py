"""The one list of each pipeline's settings: name, default, meaning.

`app.yaml`, `quix.yaml`, the settings code and the README's configuration tables all say the
same thing; `tests/unit/test_variables.py` holds them to this list, so a new setting goes
everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROKER_SECURITY", "CANDLES", "DEPRECATED", "TRADES", "Variable"]


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
    """

    name: str
    default: str
    description: str
    input_type: str = "FreeText"
    cloud: bool = True
    options: tuple[str, ...] = ()
    setting: bool = True

    def __post_init__(self) -> None:
        if self.options:
            object.__setattr__(self, "input_type", "Options")


YES_NO = ("true", "false")


# shared by both pipelines
STATS_INTERVAL = Variable("stats_interval", "30", "Seconds between two summary lines in the log")
BROKER_TIMEOUT = Variable(
    "broker_timeout", "120", "Seconds the broker may be unreachable before the app exits 1"
)
LOGLEVEL = Variable(
    "loglevel",
    "INFO",
    "Log level: DEBUG, INFO, WARNING, ERROR",
    options=("DEBUG", "INFO", "WARNING", "ERROR"),
)
REPLICATION = Variable(
    "replication",
    "",
    "Replication factor of the topics this app creates, changelogs included; "
    "empty: the broker's (or Quix Cloud's) default",
)
BROKER_ADDRESS = Variable(
    "Quix__Broker__Address",
    "localhost:19092",
    "Broker address (outside Quix Cloud, where the platform connects the app)",
    cloud=False,
)


# Connection to a self-hosted broker (Redpanda with SASL and/or TLS). Local only: on Quix
# Cloud the platform connects the app (its SDK token), as with Quix__Broker__Address.
BROKER_SECURITY: tuple[Variable, ...] = (
    Variable(
        "broker_security_protocol",
        "plaintext",
        "How to talk to the broker: plaintext, ssl (TLS), sasl_plaintext or sasl_ssl",
        cloud=False,
        options=("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"),
    ),
    Variable(
        "broker_sasl_mechanism",
        "SCRAM-SHA-256",
        "SASL mechanism with sasl_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        cloud=False,
        options=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    ),
    Variable("broker_sasl_username", "", "SASL user name (with sasl_*)", cloud=False),
    Variable("broker_sasl_password", "", "SASL password (with sasl_*); never logged", cloud=False),
    Variable(
        "broker_ssl_ca_location",
        "",
        "CA certificate file (PEM) to check the broker's TLS certificate; empty: the system's",
        cloud=False,
    ),
    Variable(
        "broker_ssl_certificate_location",
        "",
        "Client certificate file (PEM), for brokers that require TLS client authentication",
        cloud=False,
    ),
    Variable(
        "broker_ssl_key_location",
        "",
        "Private key file (PEM) of the client certificate",
        cloud=False,
    ),
)


def consumer_group(default: str) -> Variable:
    return Variable(
        "Quix__Consumer_Group",
        default,
        "Consumer group, and prefix of the state's changelog topics: one per deployment",
    )


TRADES: tuple[Variable, ...] = (
    Variable(
        "output",
        "trades",
        "Topic the trades are written to (JSON, keyed by pair, event time)",
        "OutputTopic",
    ),
    Variable(
        "gaps_output",
        "gaps",
        "Topic each gap that cannot be repaired is written to, once (JSON, keyed by pair)",
        "OutputTopic",
    ),
    Variable(
        "pairs",
        "BTC/USD,ETH/USD",
        "Comma-separated Kraken v2 symbols or patterns (BTC/USD, */USD, BTC/*), or all",
    ),
    Variable("shards", "1", "Deployments that split the pairs between them (see Scaling out)"),
    Variable("shard", "0", "Which of the shards this deployment is: 0 .. shards-1"),
    Variable("kraken_ws_url", "wss://ws.kraken.com/v2", "Kraken WebSocket API v2 endpoint"),
    Variable(
        "snapshot",
        "true",
        "Ask for the last 50 trades per pair on every (re)subscribe (true/false)",
        options=YES_NO,
    ),
    Variable(
        "heartbeat_timeout", "10", "Seconds without any message before the connection is reopened"
    ),
    Variable(
        "max_pairs_per_connection",
        "100",
        "Most pairs on one WebSocket connection; more pairs open more connections",
    ),
    Variable("subscribe_batch", "50", "Most symbols in one subscribe request"),
    Variable(
        "stale_after",
        "120",
        "Seconds without a trade before a pair's subscription is checked (resubscribe); 0: never",
    ),
    Variable(
        "kraken_rest_url", "https://api.kraken.com", "Kraken REST API, to repair gaps and backfill"
    ),
    Variable(
        "backfill_since",
        "",
        "Also publish history from this point on: a duration (7d, 12h, 30m) or an ISO-8601 time",
    ),
    Variable(
        "backfill_only",
        "false",
        "With backfill_since: publish the history up to now, then exit (0 only if complete)",
        options=YES_NO,
    ),
    Variable(
        "backfill_deadline",
        "",
        "With backfill_only: longest the history may take (e.g. 6h); past it the run exits 4",
    ),
    Variable(
        "max_gap",
        "0",
        "Opt-in cap: a gap of more trades is reported, not repaired (0: repair any gap)",
    ),
    Variable(
        "max_held",
        "100000",
        "Most live trades held per pair behind a repair; past it REST fetches them instead",
    ),
    Variable(
        "max_held_mb",
        "128",
        "Most memory (MiB) for live trades held behind repairs, all pairs (~480 B a trade)",
    ),
    Variable(
        "repair_timeout",
        "60",
        "Seconds a REST request may take before it is asked again (a repair never gives up)",
    ),
    Variable(
        "partitions",
        "3",
        "Partitions of the output and gaps topics when created; an existing one must match",
    ),
    Variable(
        "retention",
        "forever",
        "How long the output topic keeps trades, for new topics: forever, or e.g. 30d",
    ),
    REPLICATION,
    Variable(
        "decimal_strings",
        "false",
        "true: price and volume as exact decimal strings instead of JSON numbers",
        options=YES_NO,
    ),
    Variable(
        "processing_guarantee",
        "at-least-once",
        "at-least-once or exactly-once (see README, Delivery guarantees)",
        options=("at-least-once", "exactly-once"),
    ),
    Variable("metrics_port", "9108", "Port of /metrics, /healthz and /readyz; 0: off"),
    BROKER_TIMEOUT,
    STATS_INTERVAL,
    Variable("transforms", "", "Your dataframe steps, comma-separated module:function"),
    Variable(
        "min_notional",
        "1000",
        "transforms_example:min_notional keeps trades worth at least this (quote currency)",
        setting=False,
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
    ),
    *BROKER_SECURITY,
)

CANDLES: tuple[Variable, ...] = (
    Variable("input", "trades", "Topic of the trades", "InputTopic"),
    Variable("output", "candles", "Topic the candles are written to", "OutputTopic"),
    Variable("candle_seconds", "60", "Length of a candle in seconds"),
    Variable("grace_seconds", "10", "Seconds a window waits for late trades"),
    Variable("metrics_port", "9109", "Port of /metrics, /healthz and /readyz; 0: off"),
    REPLICATION,
    STATS_INTERVAL,
    BROKER_TIMEOUT,
    consumer_group("kraken-candles"),
    LOGLEVEL,
    BROKER_ADDRESS,
    *BROKER_SECURITY,
)

# Settings that are read no more: name -> what to do instead (a WARNING at start says it).
DEPRECATED: dict[str, str] = {
    "repair_attempts": "a repair never gives up on its own now (waits are reported instead: "
    "see docs on delivery guarantees); remove it",
}
