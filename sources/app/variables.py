"""The one list of each pipeline's settings: name, default, meaning.

`app.yaml`, `quix.yaml`, the settings code and the README's configuration tables all say the
same thing; `tests/unit/test_variables.py` holds them to this list, so a new setting goes
everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AUDIT", "CANDLES", "TRADES", "Variable"]


@dataclass(frozen=True)
class Variable:
    """One environment variable of a pipeline.

    :param name: its name (read case-insensitively).
    :param default: the default, as text.
    :param description: one line, as app.yaml and the README show it.
    :param input_type: Quix's `inputType`: FreeText, InputTopic or OutputTopic.
    :param cloud: offered in Quix Cloud (app.yaml, quix.yaml); False for local-only ones.
    """

    name: str
    default: str
    description: str
    input_type: str = "FreeText"
    cloud: bool = True


# shared by both pipelines
STATS_INTERVAL = Variable("stats_interval", "30", "Seconds between two summary lines in the log")
BROKER_TIMEOUT = Variable(
    "broker_timeout", "120", "Seconds the broker may be unreachable before the app exits 1"
)
LOGLEVEL = Variable("loglevel", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR")
BROKER_ADDRESS = Variable(
    "Quix__Broker__Address",
    "localhost:19092",
    "Broker address (outside Quix Cloud, where the platform connects the app)",
    cloud=False,
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
    ),
    Variable("max_gap", "50000", "Largest gap (in trades) repaired from REST; beyond it, logged"),
    Variable(
        "max_held",
        "100000",
        "Most live trades held per pair behind a repair; past it REST fetches them instead",
    ),
    Variable("repair_timeout", "60", "Seconds a REST page may take before that attempt fails"),
    Variable(
        "repair_attempts",
        "5",
        "Failed REST attempts in a row (with backoff) before a gap is given up (ERROR)",
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
    Variable(
        "decimal_strings",
        "false",
        "true: price and volume as exact decimal strings instead of JSON numbers",
    ),
    Variable(
        "processing_guarantee",
        "at-least-once",
        "at-least-once or exactly-once (see README, Delivery guarantees)",
    ),
    Variable("metrics_port", "9108", "Port of /metrics, /healthz and /readyz; 0: off"),
    BROKER_TIMEOUT,
    STATS_INTERVAL,
    Variable("transforms", "", "Your dataframe steps, comma-separated module:function"),
    consumer_group("kraken-trades"),
    LOGLEVEL,
    BROKER_ADDRESS,
    Variable(
        "embedded_broker",
        "auto",
        "auto: start an in-memory broker when nothing answers on a loopback address; never",
        cloud=False,
    ),
)

CANDLES: tuple[Variable, ...] = (
    Variable("input", "trades", "Topic of the trades", "InputTopic"),
    Variable("output", "candles", "Topic the candles are written to", "OutputTopic"),
    Variable("candle_seconds", "60", "Length of a candle in seconds"),
    Variable("grace_seconds", "10", "Seconds a window waits for late trades"),
    Variable("metrics_port", "9109", "Port of /metrics, /healthz and /readyz; 0: off"),
    STATS_INTERVAL,
    BROKER_TIMEOUT,
    consumer_group("kraken-candles"),
    LOGLEVEL,
    BROKER_ADDRESS,
)

# The audit (pipelines/audit, `python -m sources.audit`): each variable is also a command-line
# option of the same name (`gaps_input` -> `--gaps-input`), which wins over the variable.
AUDIT: tuple[Variable, ...] = (
    Variable("input", "trades", "Topic of the trades to audit", "InputTopic"),
    Variable(
        "gaps_input",
        "gaps",
        "Topic of the pipeline's gap events, which explain holes (skipped if it does not exist)",
        "InputTopic",
    ),
    Variable(
        "pairs",
        "all",
        "Pairs to audit: Kraken v2 symbols or patterns (BTC/USD, */USD, BTC/*), or all",
    ),
    Variable(
        "since",
        "",
        "Audit trades from this time on: a duration before now (7d, 12h, 30m) or an ISO-8601 time",
    ),
    Variable("until", "", "Audit trades up to this time (same forms); empty: to the topic's end"),
    Variable(
        "verify_rest",
        "false",
        "true: compare every trade with Kraken's REST Trades and check each hole there",
    ),
    Variable("kraken_rest_url", "https://api.kraken.com", "Kraken REST API, for verify_rest"),
    Variable("rest_interval", "1", "Seconds between two Kraken REST calls (Kraken allows ~1/s)"),
    Variable(
        "idle_timeout",
        "3",
        "Seconds without a new record after which the topic counts as read to its end",
    ),
    Variable("strict", "false", "true: explained holes (with a gap event) fail the audit too"),
    Variable("json", "false", "true: print the report as JSON instead of tables"),
    Variable("max_findings", "1000", "Most findings listed per pair and kind (all are counted)"),
    Variable(
        "workers",
        "auto",
        "Processes reading the partitions: a number, or auto (by partitions and CPUs)",
    ),
    LOGLEVEL,
    BROKER_ADDRESS,
)
