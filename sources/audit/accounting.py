"""The audit's accounting: records in, per-pair findings out. No I/O (sans-I/O).

`TopicAudit.add_batch` takes what a Kafka consumer's `consume()` returns (anything with the
methods `error`, `partition`, `offset`, `key`, `value`, `timestamp`; `RecordMessage` builds
one from plain values, for tests and other producers' records) and, for each record:

1. reads its value as JSON (orjson); a record that is not a JSON object is invalid;
2. keeps it only within the window (`since_ms..until_ms` by its `timestamp_ms`, else its Kafka
   timestamp) and for the selected pairs;
3. checks it against trade.v1 (`schema.plain_trade`, else the JSON Schema validator);
4. checks its Kafka key against its pair, and its Kafka timestamp, `timestamp_ms` and
   `timestamp` against each other;
5. accounts for its trade_id in the pair's `SequenceLedger` (holes, duplicates, order).

Memory per pair is constant (plus the open holes, see `ledger.py`); no record is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .findings import Findings, Invalid, KeyMismatch, TimeMismatch
from .ledger import MAX_OPEN_HOLES, SequenceLedger
from .pairs import PairSelection
from .schema import TradeSchema, plain_fields, timestamp_ms_of, valid_pair

__all__ = ["PairAudit", "RecordMessage", "TopicAudit"]

_NOT_SEEN = object()
MAX_OTHER_PAIRS = 100_000  # pairs not audited that are remembered as such
_FIRST_MS = -(2**63)
_LAST_MS = 2**63 - 1


class RecordMessage:
    """A record as `confluent_kafka.Message` presents it, built from plain values."""

    __slots__ = ("_key", "_offset", "_partition", "_timestamp", "_value")

    def __init__(
        self,
        value: bytes | None,
        *,
        key: bytes | str | None = None,
        timestamp_ms: int = 0,
        partition: int = 0,
        offset: int = 0,
    ) -> None:
        self._value = value
        self._key = key.encode() if isinstance(key, str) else key
        self._timestamp = (1, timestamp_ms)  # TIMESTAMP_CREATE_TIME
        self._partition = partition
        self._offset = offset

    def error(self) -> None:
        return None

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


@dataclass(eq=False)
class PairAudit:
    """Everything the audit learned about one pair.

    :param partition: where its first record was (its home); `first_offset`/`last_offset`:
        the first and last of its records in the window there (for `--verify-rest`).
    :param elsewhere: its records found on other partitions (a wrong key sends them there).
    :param strings: records with `price` as a decimal string (`decimal_strings`); `numbers`:
        as a JSON number.
    """

    pair: str
    key: bytes
    partition: int
    first_offset: int
    max_findings: int
    last_offset: int = -1
    valid: bool = True  # the pair's name is valid by trade.v1
    records: int = 0
    elsewhere: int = 0
    strings: int = 0
    numbers: int = 0
    ledger: SequenceLedger | None = None
    invalid: Findings[Invalid] = field(init=False)
    times: Findings[TimeMismatch] = field(init=False)
    keys: Findings[KeyMismatch] = field(init=False)

    def __post_init__(self) -> None:
        self.invalid = Findings(self.max_findings)
        self.times = Findings(self.max_findings)
        self.keys = Findings(self.max_findings)


class TopicAudit:
    """The accounting of one read of a trades topic.

    :param pairs: which pairs to audit.
    :param since_ms: first trade time audited (inclusive), None: no bound; `until_ms` the last.
    :param max_findings: most findings of each kind kept per pair (all are counted).
    :param max_open_holes: see `SequenceLedger`.
    """

    def __init__(
        self,
        pairs: PairSelection,
        since_ms: int | None = None,
        until_ms: int | None = None,
        *,
        max_findings: int = 1000,
        max_open_holes: int = MAX_OPEN_HOLES,
    ) -> None:
        self.selection = pairs
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.max_findings = max_findings
        self.max_open_holes = max_open_holes
        self.pairs: dict[str, PairAudit] = {}
        self.unpaired: Findings[Invalid] = Findings(max_findings)  # invalid, pair unknown
        self.read = 0  # records read, all of them
        self.before = 0  # records before the window
        self.after = 0  # records after it
        self.other_pairs = 0  # records of pairs not audited
        self.done_partitions: set[int] = set()  # read past until_ms for every audited pair
        self._selected: dict[Any, PairAudit | None] = {}
        self._pending: dict[int, set[str]] = {}  # partition -> audited pairs not yet past until
        self._schema = TradeSchema()

    def add(self, value: bytes | None, **fields: Any) -> None:
        """One record (see `RecordMessage` for the fields)."""
        self.add_batch([RecordMessage(value, **fields)])

    def add_batch(self, messages: list[Any]) -> list[Any]:
        """Account for a batch of consumed messages; returns those that carry an error
        (end of partition and the like), for the reader to handle."""
        loads = orjson.loads
        since = _FIRST_MS if self.since_ms is None else self.since_ms
        until = _LAST_MS if self.until_ms is None else self.until_ms
        selected = self._selected
        errors = []
        read = 0
        for message in messages:
            if message.error() is not None:
                errors.append(message)
                continue
            read += 1
            try:
                record = loads(message.value())
            except (orjson.JSONDecodeError, TypeError):
                self._unpaired(message, "not JSON")
                continue
            if type(record) is not dict:
                self._unpaired(message, f"not a JSON object: {type(record).__name__}")
                continue
            pair = record.get("pair")
            kafka_ms = message.timestamp()[1]
            millis = record.get("timestamp_ms")
            when = millis if type(millis) is int else kafka_ms
            if when < since:
                self.before += 1
                continue
            if when > until:
                self._past_until(pair, message.partition())
                continue
            if type(pair) is not str:
                self._unpaired(message, *self._schema.errors(record))
                continue
            audit = selected.get(pair, _NOT_SEEN)
            if audit is _NOT_SEEN:
                audit = self._select(pair, message)
            if audit is None:
                self.other_pairs += 1
                continue
            audit.records += 1
            text_ms = plain_fields(record) if audit.valid else None
            if text_ms is not None:
                trade_id = record["trade_id"]
                if type(record["price"]) is str:
                    audit.strings += 1
                else:
                    audit.numbers += 1
                if message.key() != audit.key:
                    audit.keys.add(_key_mismatch(trade_id, message))
                if kafka_ms != millis or text_ms != millis:
                    audit.times.add(_time_mismatch(trade_id, record, message))
            else:
                trade_id = self._checked(audit, record, message)
                if trade_id is None:
                    continue
            partition = message.partition()
            if partition == audit.partition:
                audit.last_offset = message.offset()
            else:
                audit.elsewhere += 1
            ledger = audit.ledger
            if ledger is None:
                audit.ledger = SequenceLedger(
                    trade_id,
                    when,
                    max_findings=self.max_findings,
                    max_open_holes=self.max_open_holes,
                )
            elif trade_id == ledger.high + 1:
                ledger.high = trade_id
                ledger.high_ms = when
            else:
                ledger.add(trade_id, when, partition, message.offset())
        self.read += read
        return errors

    def absent(self) -> list[str]:
        """Pairs named in the selection that the window does not hold."""
        return self.selection.absent({p for p, a in self.pairs.items() if a.records})

    # --- the slow paths -------------------------------------------------------------------

    def _select(self, pair: str, message: Any) -> PairAudit | None:
        """The audit of a pair seen for the first time, or None when it is not audited."""
        audit = None
        if self.selection.matches(pair):
            partition = message.partition()
            audit = PairAudit(pair, pair.encode(), partition, message.offset(), self.max_findings)
            audit.valid = valid_pair(pair)
            self.pairs[pair] = audit
            if self.until_ms is not None:
                self._pending.setdefault(partition, set()).add(pair)
        if audit is not None or len(self._selected) < MAX_OTHER_PAIRS:
            self._selected[pair] = audit  # (a topic of garbage pairs is not cached)
        return audit

    def _checked(self, audit: PairAudit, record: dict, message: Any) -> int | None:
        """The slow path of a record that is not plainly valid: the schema decides. An
        invalid one is recorded (and nothing else is checked of it); a valid one is checked
        like any. Returns its trade_id when it can be placed in the sequence, else None."""
        errors = self._schema.errors(record)
        trade_id = record.get("trade_id")
        if type(trade_id) is float and trade_id.is_integer():
            trade_id = int(trade_id)  # JSON Schema's integer: 5.0 is one
        usable = type(trade_id) is int and trade_id >= 0
        if errors:
            audit.invalid.add(
                Invalid(
                    message.partition(),
                    message.offset(),
                    trade_id if usable else None,
                    audit.pair,
                    tuple(errors),
                )
            )
            return trade_id if usable else None
        if type(record["price"]) is str:
            audit.strings += 1
        else:
            audit.numbers += 1
        if message.key() != audit.key:
            audit.keys.add(_key_mismatch(trade_id, message))
        millis = record["timestamp_ms"]
        if message.timestamp()[1] != millis or timestamp_ms_of(record["timestamp"]) != millis:
            audit.times.add(_time_mismatch(trade_id, record, message))
        return trade_id

    def _unpaired(self, message: Any, *errors: str) -> None:
        self.unpaired.add(
            Invalid(message.partition(), message.offset(), None, None, errors or ("no pair",))
        )

    def _past_until(self, pair: Any, partition: int) -> None:
        """A record after `until_ms`: once every audited pair of its partition has passed
        it, that partition is read far enough."""
        self.after += 1
        pending = self._pending.get(partition)
        if pending:
            pending.discard(pair)
        if not pending:
            self.done_partitions.add(partition)


def _key_mismatch(trade_id: int, message: Any) -> KeyMismatch:
    key = message.key()
    text = key.decode(errors="replace") if key is not None else None
    return KeyMismatch(trade_id, message.partition(), message.offset(), text)


def _time_mismatch(trade_id: int, record: dict, message: Any) -> TimeMismatch:
    return TimeMismatch(
        trade_id,
        message.partition(),
        message.offset(),
        message.timestamp()[1],
        record.get("timestamp_ms"),
        record.get("timestamp"),
    )
