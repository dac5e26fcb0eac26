"""Records against `schemas/trade.v1.json` and `gap.v1.json`, fast.

The JSON Schema library (`jsonschema`, its validator built once) has the last word, but it
costs some 30 µs a record: too much for millions. So a record first meets `PlainTrade`, trade.v1's
fields as the pipeline writes them, decoded and typed in C by msgspec (`plain_bytes`: that
and the pair's and the timestamp's form), then, when msgspec refuses it, `plain_trade`, the
same tests in Python on the parsed record. They imply the schema (never the other way round):
the trades the pipeline writes pass them, and only a record that fails them is handed to the
validator, which says whether it is invalid, and why. `tests/unit/test_audit_schema.py` proves
on generated records that whatever either accepts, the validator accepts too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import orjson
from jsonschema import Draft202012Validator

__all__ = [
    "SCHEMAS",
    "PlainTrade",
    "TradeSchema",
    "decode_plain",
    "gap_errors",
    "plain_bytes",
    "plain_fields",
    "plain_trade",
    "timestamp_ms_of",
    "timestamp_text_ms",
    "timestamp_us_of",
    "valid_pair",
]

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MAX_ERRORS = 3  # messages kept per invalid record
DECIMAL = r"[0-9]+(\.[0-9]*[1-9])?"  # trade.v1's price and volume as strings
_DECIMAL = re.compile(DECIMAL)
# the fields of a trade record, in one call (KeyError when one is missing)
FIELDS = itemgetter(
    "pair",
    "price",
    "volume",
    "trade_id",
    "timestamp_ms",
    "side",
    "order_type",
    "origin",
    "timestamp",
)
# (side, order_type, origin): every valid combination, tested in one look-up
ENUMS = frozenset(
    (side, order_type, origin)
    for side in ("buy", "sell")
    for order_type in ("market", "limit")
    for origin in ("ws", "rest")
)
SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds, a small cache
SECONDS_CACHE = 4096
POINT_MILLIS = {f".{n:03d}": n for n in range(1000)}  # ".708" -> 708
DIGITS_Z = frozenset(f"{n:03d}Z" for n in range(1000))  # "706Z"
_EPOCH = 719163  # date(1970, 1, 1).toordinal()
_EPOCH_TIME = datetime(1970, 1, 1, tzinfo=UTC)


_Positive = Annotated[float, msgspec.Meta(gt=0)]  # a JSON number > 0 (an integer too)
_Decimal = Annotated[str, msgspec.Meta(pattern=f"^{DECIMAL}$")]  # the schema's own pattern


class PlainTrade(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A trade record as the pipeline writes it, every type and value trade.v1 asks checked
    by msgspec while it decodes, but the forms of `pair` and `timestamp` (`plain_bytes`).

    Stricter than the schema, never looser: an integral float `trade_id`, a field added by a
    transform (whose value msgspec would skip unchecked) and the like are refused, and
    `plain_trade` and the validator decide.
    """

    pair: str
    price: _Positive | _Decimal
    volume: _Positive | _Decimal
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    trade_id: Annotated[int, msgspec.Meta(ge=0)]
    timestamp_ms: int
    timestamp: str
    origin: Literal["ws", "rest"]


# bytes -> PlainTrade; raises msgspec.DecodeError (its ValidationError too) when refused
decode_plain = msgspec.json.Decoder(PlainTrade).decode


def plain_bytes(value: bytes) -> int | None:
    """The time of the `timestamp` text (epoch ms) of a record's bytes when trade.v1 plainly
    accepts it (`PlainTrade`, a valid pair, the pipeline's timestamp form); None otherwise (the
    schema may still accept it). The audit's read has these checks inline."""
    try:
        trade = decode_plain(value)
    except msgspec.DecodeError:
        return None
    return timestamp_text_ms(trade.timestamp) if valid_pair(trade.pair) else None


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{name}.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(name: str, value: Any) -> list[str]:
    errors = sorted(_validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [_message(error) for error in errors[:MAX_ERRORS]]


def _message(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    text = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where}: {text}" if where else text


def gap_errors(value: Any) -> list[str]:
    """Why a gap event does not validate against gap.v1 (empty: it does)."""
    return _errors("gap.v1", value)


class TradeSchema:
    """trade.v1, the validator built once (per process; the object itself holds nothing, so
    that an audit travels between processes)."""

    def errors(self, record: Any) -> list[str]:
        """Why `record` does not validate (at most a few messages); empty when it does."""
        if plain_trade(record) is not None:
            return []
        return _errors("trade.v1", record)


def valid_pair(pair: Any) -> bool:
    """trade.v1's `pair`: a string `BASE/QUOTE`, one slash, neither side empty."""
    return type(pair) is str and pair.count("/") == 1 and pair[0] != "/" and pair[-1] != "/"


def plain_trade(record: Any) -> int | None:
    """The time of `record`'s `timestamp` text (epoch ms) when trade.v1 plainly accepts the
    record: the usual shape, checked in one go; None otherwise.

    None says nothing: the schema may still accept the record (an integral float trade_id,
    a time zone offset...), so ask `TradeSchema.errors`.
    """
    if type(record) is not dict or not valid_pair(record.get("pair")):
        return None
    return plain_fields(record)


def plain_fields(record: dict) -> int | None:
    """`plain_trade` of a record whose `pair` is known to be valid (the audit checks each
    pair once): every other field, the timestamp's time in ms or None."""
    try:
        _, price, volume, trade_id, millis, side, order_type, origin, text = FIELDS(record)
        plain = (
            ((type(price) is float and price > 0) or _positive(price))
            and ((type(volume) is float and volume > 0) or _positive(volume))
            and type(trade_id) is int
            and trade_id >= 0
            and type(millis) is int
            and (side, order_type, origin) in ENUMS
        )
    except (KeyError, TypeError):  # a field missing; a list where a string belongs
        return None
    return timestamp_text_ms(text) if plain else None


def _positive(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return value > 0
    return kind is str and _DECIMAL.fullmatch(value) is not None


def timestamp_text_ms(text: Any) -> int | None:
    """`2023-09-25T07:49:37.708706Z` (the pipeline's form: UTC, 6 decimals) -> epoch ms,
    truncated; None for any other form (the schema may still accept it)."""
    if type(text) is not str or len(text) != 27:
        return None
    millis = POINT_MILLIS.get(text[19:23])  # ".708"
    if millis is None or text[23:] not in DIGITS_Z:  # "706Z"
        return None
    head = text[:19]
    seconds = SECONDS.get(head)
    if seconds is None:
        seconds = _head_seconds(head)
        if seconds is None:
            return None
        if len(SECONDS) >= SECONDS_CACHE:
            SECONDS.clear()
        SECONDS[head] = seconds
    return seconds * 1000 + millis


def _head_seconds(head: str) -> int | None:
    """`YYYY-MM-DDTHH:MM:SS` -> epoch seconds, or None when it is not that."""
    digits = head[:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:19]
    if (
        head[4] != "-"
        or head[7] != "-"
        or head[13] != ":"
        or head[16] != ":"
        or not digits.isascii()
        or not digits.isdigit()
    ):
        return None
    try:
        day = date(int(head[:4]), int(head[5:7]), int(head[8:10]))
    except ValueError:
        return None
    hour, minute, second = int(head[11:13]), int(head[14:16]), int(head[17:19])
    if hour > 23 or minute > 59 or second > 59:
        return None
    return (day.toordinal() - _EPOCH) * 86400 + hour * 3600 + minute * 60 + second


def timestamp_ms_of(text: Any) -> int | None:
    """Any RFC 3339 time with a zone -> epoch ms (truncated); None when it is not one."""
    fast = timestamp_text_ms(text)
    if fast is not None:
        return fast
    micros = timestamp_us_of(text)
    return None if micros is None else micros // 1000


def timestamp_us_of(text: Any) -> int | None:
    """Any RFC 3339 time with a zone -> epoch microseconds (truncated); None otherwise."""
    if type(text) is not str:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    delta = moment - _EPOCH_TIME
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
