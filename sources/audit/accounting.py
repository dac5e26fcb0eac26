"""The audit's accounting: records in, per-pair findings out. No I/O (sans-I/O).

`TopicAudit.add_batch` takes what a Kafka consumer's `consume()` returns (anything with the
methods `error`, `partition`, `offset`, `key`, `value`, `timestamp`; `RecordMessage` builds
one from plain values, for tests and other producers' records) and, for each record:

1. reads its value: msgspec decodes the usual trade into a typed `schema.PlainTrade`, checking
   trade.v1's types and values in C; anything else is read as JSON by orjson (a record that
   is not a JSON object is invalid) and checked one case at a time (`_slow`);
2. keeps it only within the window (`since_ms..until_ms` by its `timestamp_ms`, else its Kafka
   timestamp) and for the selected pairs;
3. checks it against trade.v1 (the fast path's checks, `schema.plain_bytes`, else the JSON
   Schema validator);
4. checks its Kafka key against its pair, and its Kafka timestamp, `timestamp_ms` and
   `timestamp` against each other;
5. accounts for its trade_id in the `SequenceLedger` of the pair on that partition (order
   holds within a partition only: a pair's records on another partition are accounted apart
   and merged by `settle`).

Memory per pair is constant (plus the open holes, see `ledger.py`); no record is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from msgspec import DecodeError

from .findings import Findings, Invalid, KeyMismatch, TimeMismatch
from .ledger import MAX_OPEN_HOLES, SequenceLedger
from .pairs import PairSelection
from .schema import (
    DIGITS_Z,
    POINT_MILLIS,
    SECONDS,
    TradeSchema,
    decode_plain,
    timestamp_ms_of,
    timestamp_text_ms,
    valid_pair,
)

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


@dataclass(eq=False, slots=True)
class PairAudit:
    """Everything the audit learned about one pair.

    :param partition: its home partition: where its first record was, until `merge` makes
        it the one with most of its records; `first_offset`/`last_offset`: the first and last
        of its records in the window there (kept with `track_offsets`, for `--verify-rest`).
    :param elsewhere: its records on other partitions (a wrong key sends them there).
    :param strings: valid records with `price` as a decimal string (`decimal_strings`); the
        other valid ones have it as a JSON number.
    """

    pair: str
    key: bytes
    partition: int
    first_offset: int
    max_findings: int
    last_offset: int = -1
    valid: bool = True  # the pair's name is valid by trade.v1
    unsequenced: int = 0  # its records without a usable trade_id (invalid ones)
    elsewhere: int = 0
    strings: int = 0
    ledger: SequenceLedger | None = None
    invalid: Findings[Invalid] = field(init=False)
    times: Findings[TimeMismatch] = field(init=False)
    keys: Findings[KeyMismatch] = field(init=False)

    def __post_init__(self) -> None:
        self.invalid = Findings(self.max_findings)
        self.times = Findings(self.max_findings)
        self.keys = Findings(self.max_findings)

    @property
    def records(self) -> int:
        """Its records in the window: those its ledger placed (counted there, not one by one
        in the hot loop) and those it could not place."""
        return self.unsequenced + (0 if self.ledger is None else self.ledger.placed)

    def merge(self, other: PairAudit) -> None:
        """Take in what another reader learned of the same pair (other partitions). The
        partition with more of its records stays its home."""
        mine, theirs = self.records, other.records
        if theirs - other.elsewhere > mine - self.elsewhere:
            self.partition, self.first_offset = other.partition, other.first_offset
            self.last_offset = other.last_offset
            self.elsewhere = mine + other.elsewhere
        else:
            self.elsewhere += theirs
        self.unsequenced += other.unsequenced
        self.strings += other.strings
        self.invalid.extend(other.invalid)
        self.times.extend(other.times)
        self.keys.extend(other.keys)
        if other.ledger is not None:
            if self.ledger is None:
                self.ledger = other.ledger
            else:
                self.ledger.merge(other.ledger)


class TopicAudit:
    """The accounting of one read of a trades topic.

    :param pairs: which pairs to audit.
    :param since_ms: first trade time audited (inclusive), None: no bound; `until_ms` the last.
    :param max_findings: most findings of each kind kept per pair (all are counted).
    :param max_open_holes: see `SequenceLedger`.
    :param track_offsets: keep each pair's first and last offset on its partition (what
        `--verify-rest` reads again); off, the hot path skips two calls per record.
    """

    def __init__(
        self,
        pairs: PairSelection,
        since_ms: int | None = None,
        until_ms: int | None = None,
        *,
        max_findings: int = 1000,
        max_open_holes: int = MAX_OPEN_HOLES,
        track_offsets: bool = True,
    ) -> None:
        self.selection = pairs
        self.track_offsets = track_offsets
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
        self._apart: dict[tuple[str, int], PairAudit] = {}  # see `_elsewhere`
        self._pending: dict[int, set[str]] = {}  # partition -> audited pairs not yet past until
        self._schema = TradeSchema()

    def add(self, value: bytes | None, **fields: Any) -> None:
        """One record (see `RecordMessage` for the fields)."""
        self.add_batch([RecordMessage(value, **fields)])

    def blank(self) -> TopicAudit:
        """An empty audit of the same selection and window (for another reader)."""
        return TopicAudit(
            self.selection,
            self.since_ms,
            self.until_ms,
            max_findings=self.max_findings,
            max_open_holes=self.max_open_holes,
            track_offsets=self.track_offsets,
        )

    def merge(self, other: TopicAudit) -> None:
        """Take in the audit another reader made of other partitions of the same topic."""
        self.settle()
        other.settle()
        self.read += other.read
        self.before += other.before
        self.after += other.after
        self.other_pairs += other.other_pairs
        self.unpaired.extend(other.unpaired)
        self.done_partitions |= other.done_partitions
        for pair, theirs in other.pairs.items():
            mine = self.pairs.get(pair)
            if mine is None:
                self.pairs[pair] = theirs
                self._selected[pair] = theirs
            else:
                mine.merge(theirs)

    def add_batch(self, messages: list[Any]) -> list[Any]:
        """Account for a batch of consumed messages; returns those that carry an error (end
        of partition and the like). The fast path has `schema.plain_bytes`' checks inline (a
        call costs more): msgspec decodes and checks the record in C into a `PlainTrade`;
        `_slow` takes what it refuses (test_audit_schema.py holds both to the validator)."""
        decode, heads, point_millis, digits_z = (
            decode_plain,
            SECONDS.get,
            POINT_MILLIS.get,
            DIGITS_Z,
        )
        selected, track, slow, errors = self._selected, self.track_offsets, self._slow, []
        since, until = self._window()
        for message in messages:
            try:
                trade = decode(message.value())
                audit = selected[trade.pair]  # KeyError: a pair seen for the first time
            except (DecodeError, TypeError, KeyError):
                slow(message, errors)  # not a plain trade, not even JSON, a new pair, an error
                continue
            millis = trade.timestamp_ms
            if audit is None or not since <= millis <= until:
                self._aside(message, trade.pair, millis)
                continue
            partition = message.partition()
            if partition != audit.partition:  # order holds within a partition only
                audit = self._elsewhere(trade.pair, partition, message)
            text = trade.timestamp  # the milliseconds: ".708" of "...T07:49:37.708706Z"
            if (
                audit.valid
                and len(text) == 27
                and (part := point_millis(text[19:23])) is not None
                and text[23:] in digits_z
            ):
                seconds = heads(text[:19])
                text_ms = timestamp_text_ms(text) if seconds is None else seconds * 1000 + part
            else:
                text_ms = None
            if text_ms is None:  # another time form, an invalid pair: the validator decides
                trade_id = self._checked(audit, orjson.loads(message.value()), message)
                if trade_id is None:
                    continue
            else:
                trade_id = trade.trade_id
                audit.strings += type(trade.price) is str  # the records in decimal strings
                if message.key() != audit.key:
                    audit.keys.add(_key_mismatch(trade_id, message))
                if text_ms != millis or message.timestamp()[1] != millis:
                    audit.times.add(_time_mismatch(trade_id, millis, text, message))
            if track:
                audit.last_offset = message.offset()
            if (ledger := audit.ledger) is None:
                self._first(audit, trade_id, millis)
            elif trade_id == ledger.high + 1:
                ledger.high, ledger.high_ms = trade_id, millis
            else:
                ledger.add(trade_id, millis, partition, message.offset())
        self.read += len(messages) - len(errors)
        return errors

    def _window(self) -> tuple[int, int]:
        """(since, until) in epoch ms, the open ends as the earliest and latest times."""
        since = _FIRST_MS if self.since_ms is None else self.since_ms
        return since, _LAST_MS if self.until_ms is None else self.until_ms

    def absent(self) -> list[str]:
        """Pairs named in the selection that the window does not hold."""
        return self.selection.absent({p for p, a in self.pairs.items() if a.records})

    # --- the slow paths -------------------------------------------------------------------

    def _aside(self, message: Any, pair: str, millis: int) -> None:
        """A record the fast path read but leaves: outside the window, or of a pair not
        audited."""
        if self.since_ms is not None and millis < self.since_ms:
            self.before += 1
        elif self.until_ms is not None and millis > self.until_ms:
            self._past_until(pair, message.partition())
        else:
            self.other_pairs += 1

    def _slow(self, message: Any, errors: list[Any]) -> None:
        """A message the fast path does not take, every case checked one by one."""
        try:
            record = orjson.loads(message.value())
        except (orjson.JSONDecodeError, TypeError):
            record = None
        if type(record) is not dict:
            if message.error() is not None:
                errors.append(message)
            else:
                self._unpaired(message, "not a JSON object")
            return
        pair = record.get("pair")
        millis = record.get("timestamp_ms")
        when = millis if type(millis) is int else message.timestamp()[1]
        if self.since_ms is not None and when < self.since_ms:
            self.before += 1
            return
        if self.until_ms is not None and when > self.until_ms:
            self._past_until(pair, message.partition())
            return
        if type(pair) is not str:
            self._unpaired(message, *self._schema.errors(record))
            return
        audit = self._selected.get(pair, _NOT_SEEN)
        if audit is _NOT_SEEN:
            audit = self._select(pair, message)
        if audit is None:
            self.other_pairs += 1
            return
        if message.partition() != audit.partition:
            audit = self._elsewhere(pair, message.partition(), message)
        trade_id = self._checked(audit, record, message)
        if trade_id is None:
            return
        if self.track_offsets:
            audit.last_offset = message.offset()
        if audit.ledger is None:
            self._first(audit, trade_id, when)
        else:
            audit.ledger.add(trade_id, when, message.partition(), message.offset())

    def _elsewhere(self, pair: str, partition: int, message: Any) -> PairAudit:
        """The audit of a pair's records on another partition than its first: kept apart
        (order holds within a partition only) and merged into the pair's by `settle`."""
        audit = self._apart.get((pair, partition))
        if audit is None:
            home = self.pairs[pair]
            audit = PairAudit(pair, home.key, partition, message.offset(), self.max_findings)
            audit.valid = home.valid
            self._apart[(pair, partition)] = audit
        return audit

    def settle(self) -> None:
        """Merge the records each pair has on other partitions into the pair's audit (its
        home becomes the partition with most of them). Done by the report; idempotent."""
        apart, self._apart = self._apart, {}
        for (pair, _), audit in sorted(apart.items()):
            self.pairs[pair].merge(audit)

    def _first(self, audit: PairAudit, trade_id: int, millis: int) -> None:
        audit.ledger = SequenceLedger(
            trade_id, millis, max_findings=self.max_findings, max_open_holes=self.max_open_holes
        )

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
        like any. Returns its trade_id when it can be placed in the sequence, else None
        (counted as unsequenced)."""
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
            if not usable:
                audit.unsequenced += 1
                return None
            return trade_id
        if type(record["price"]) is str:
            audit.strings += 1
        if message.key() != audit.key:
            audit.keys.add(_key_mismatch(trade_id, message))
        millis = record["timestamp_ms"]
        if message.timestamp()[1] != millis or timestamp_ms_of(record["timestamp"]) != millis:
            audit.times.add(_time_mismatch(trade_id, millis, record["timestamp"], message))
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


def _time_mismatch(trade_id: int, millis: int, text: str, message: Any) -> TimeMismatch:
    return TimeMismatch(
        trade_id, message.partition(), message.offset(), message.timestamp()[1], millis, text
    )
