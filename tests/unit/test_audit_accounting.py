"""The audit's accounting names exactly what was done to a topic, with trade_ids.

A clean topic, as the pipeline writes it, is corrupted at random (hypothesis): a record
removed, duplicated, two swapped, a key, a Kafka timestamp or a field changed, a record that
breaks the schema, a hole with or without its gap event. The report of the pure layer (no
broker) must name that corruption and nothing else. `tests/e2e/test_audit_e2e.py` does the
same to a topic the pipeline really wrote.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Market
from tests.support.audit import (
    Written,
    audit_report,
    changed,
    found,
    gap_event,
    market_topic,
    only,
    pair_report,
    positions,
)
from tests.support.examples import examples

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD")
_MARKET = Market(PAIRS, seed=41)
_MARKET.seed_history(count_per_pair=40, span_seconds=400)
CLEAN = market_topic(_MARKET)
STRINGS = market_topic(_MARKET, decimal_strings=True)
TOPICS = st.sampled_from([CLEAN, STRINGS])


@st.composite
def interior(draw: st.DrawFn, topic: list[Written]) -> tuple[str, int]:
    """A pair and the topic position of one of its records, neither its first nor its last."""
    pair = draw(st.sampled_from(PAIRS))
    places = positions(topic, pair)
    return pair, draw(st.sampled_from(places[1:-1]))


def test_the_clean_topic_is_clean_in_both_value_modes() -> None:
    for topic, mode in ((CLEAN, "numbers"), (STRINGS, "decimal_strings")):
        report = audit_report(topic)
        assert found(report) == only()
        assert report["summary"] == {
            **report["summary"],
            "status": "clean",
            "exit_code": 0,
            "pairs": 3,
            "trades": len(topic),
        }
        for pair in PAIRS:
            ids = [r.trade_id for r in topic if r.pair == pair]
            summary = pair_report(report, pair)
            assert (summary["first_trade_id"], summary["last_trade_id"]) == (ids[0], ids[-1])
            assert summary["trades"] == len(ids) and summary["value_mode"] == mode


@settings(deadline=None)  # no timing: machines under load are slow
@given(data=st.data(), topic=TOPICS)
def test_a_removed_record_is_an_unexplained_hole_of_its_trade_id(data, topic) -> None:
    pair, at = data.draw(interior(topic))
    removed = topic[at].trade_id
    report = audit_report(topic[:at] + topic[at + 1 :])
    assert found(report) == only(holes={(pair, removed, removed, False)})
    assert report["summary"]["exit_code"] == 1


@settings(deadline=None)  # no timing: machines under load are slow
@given(data=st.data(), topic=TOPICS)
def test_a_duplicated_record_is_named_wherever_its_copy_lands(data, topic) -> None:
    at = data.draw(st.integers(0, len(topic) - 1))
    copy_at = data.draw(st.integers(at + 1, len(topic)))  # a replay: later in the topic
    corrupt = [*topic[:copy_at], topic[at], *topic[copy_at:]]
    report = audit_report(corrupt)
    assert found(report) == only(duplicates={(topic[at].pair, topic[at].trade_id)})
    assert report["summary"]["exit_code"] == 1


@settings(deadline=None)  # no timing: machines under load are slow
@given(data=st.data(), topic=TOPICS)
def test_two_swapped_records_are_named_out_of_order(data, topic) -> None:
    pair = data.draw(st.sampled_from(PAIRS))
    places = positions(topic, pair)
    first, second = sorted(
        data.draw(st.lists(st.sampled_from(places), min_size=2, max_size=2, unique=True))
    )
    corrupt = list(topic)
    corrupt[first], corrupt[second] = topic[second], topic[first]
    low, high = topic[first].trade_id, topic[second].trade_id
    expected = {(pair, low, low, high)}  # the lower one arrives after the higher
    if high > low + 1:  # and those between them arrive after the higher one too
        expected.add((pair, low + 1, high - 1, high))
    assert found(audit_report(corrupt)) == only(late=expected)


@settings(deadline=None)  # no timing: machines under load are slow
@given(data=st.data(), topic=TOPICS, key=st.sampled_from(["ETH/EUR", "btc/usd", "", None]))
def test_a_changed_key_is_named(data, topic, key) -> None:
    at = data.draw(st.integers(0, len(topic) - 1))
    record = topic[at]
    if key == record.key:
        key = "OTHER/KEY"
    corrupt = [
        *topic[:at],
        Written(record.partition, key, record.value, record.timestamp_ms),
        *topic[at + 1 :],
    ]
    assert found(audit_report(corrupt)) == only(key={(record.pair, record.trade_id)})


@settings(deadline=None)  # no timing: machines under load are slow
@given(
    data=st.data(),
    topic=TOPICS,
    shift=st.integers(-(10**9), 10**9).filter(lambda n: n != 0),
    where=st.sampled_from(["kafka", "timestamp_ms", "timestamp"]),
)
def test_a_changed_time_is_named(data, topic, shift, where) -> None:
    at = data.draw(st.integers(0, len(topic) - 1))
    record = topic[at]
    if where == "kafka":
        corrupt_record = Written(
            record.partition, record.key, record.value, record.timestamp_ms + shift
        )
    elif where == "timestamp_ms":
        corrupt_record = changed(record, timestamp_ms=record.value["timestamp_ms"] + shift)
    else:
        from datetime import UTC, datetime, timedelta

        moment = datetime.fromisoformat(record.value["timestamp"]) + timedelta(milliseconds=shift)
        stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        corrupt_record = changed(record, timestamp=stamp)
    corrupt = [*topic[:at], corrupt_record, *topic[at + 1 :]]
    assert found(audit_report(corrupt)) == only(time={(record.pair, record.trade_id)})


BREAKERS = [
    {"price": "abc"},
    {"price": -1.5},
    {"volume": 0},
    {"volume": "1.50"},  # a decimal string with a trailing zero is not the plain form
    {"side": "up"},
    {"order_type": None},
    {"timestamp": "yesterday"},
    {"timestamp_ms": "1700000000000"},
    {"origin": "fax"},
]


@settings(deadline=None)  # no timing: machines under load are slow
@given(data=st.data(), topic=TOPICS, breaker=st.sampled_from([*BREAKERS, "drop"]))
def test_a_record_that_breaks_the_schema_is_named_and_nothing_else(data, topic, breaker) -> None:
    at = data.draw(st.integers(0, len(topic) - 1))
    record = topic[at]
    if breaker == "drop":
        field = data.draw(st.sampled_from(["price", "volume", "side", "origin", "timestamp"]))
        broken = Written(
            record.partition,
            record.key,
            {k: v for k, v in record.value.items() if k != field},
            record.timestamp_ms,
        )
    else:
        broken = changed(record, **breaker)
    report = audit_report([*topic[:at], broken, *topic[at + 1 :]])
    assert found(report) == only(invalid={(record.pair, record.trade_id)})
    [item] = pair_report(report, record.pair)["invalid"]
    assert item["errors"] and item["offset"] >= 0
    assert report["summary"]["exit_code"] == 1


@settings(deadline=None)  # no timing: machines under load are slow
@given(
    data=st.data(),
    topic=TOPICS,
    length=st.integers(1, 5),
    with_event=st.booleans(),
    reason=st.sampled_from(["rest_lacks", "max_gap", "repair_off", "abandoned"]),
)
def test_a_hole_is_explained_exactly_when_a_gap_event_covers_it(
    data, topic, length, with_event, reason
) -> None:
    pair = data.draw(st.sampled_from(PAIRS))
    places = positions(topic, pair)
    start = data.draw(st.integers(1, len(places) - 1 - length))
    gone = places[start : start + length]
    first, last = topic[gone[0]].trade_id, topic[gone[-1]].trade_id
    corrupt = [r for i, r in enumerate(topic) if i not in set(gone)]
    events = [gap_event(pair, first, last, reason)] if with_event else []
    report = audit_report(corrupt, events)
    assert found(report) == only(holes={(pair, first, last, with_event)})
    [hole] = pair_report(report, pair)["holes"]
    assert hole["count"] == length and hole["reasons"] == ([reason] if with_event else [])
    assert report["summary"]["exit_code"] == (0 if with_event else 1)
    assert audit_report(corrupt, events, strict=True)["summary"]["exit_code"] == 1


def test_a_hole_only_partly_covered_by_gap_events_stays_unexplained() -> None:
    places = positions(CLEAN, "BTC/USD")
    gone = set(places[10:15])
    first, last = CLEAN[places[10]].trade_id, CLEAN[places[14]].trade_id
    corrupt = [r for i, r in enumerate(CLEAN) if i not in gone]
    report = audit_report(corrupt, [gap_event("BTC/USD", first, last - 1)])
    [hole] = pair_report(report, "BTC/USD")["holes"]
    assert not hole["explained"] and "cover only part" in hole["detail"]
    two = [gap_event("BTC/USD", first, first + 1), gap_event("BTC/USD", first + 2, last)]
    [hole] = pair_report(audit_report(corrupt, two), "BTC/USD")["holes"]
    assert hole["explained"]


@settings(max_examples=examples(50), deadline=None)
@given(data=st.data())
def test_corruptions_of_several_pairs_at_once_are_each_named(data) -> None:
    """One corruption per pair, of a random kind: the report names all three."""
    topic = data.draw(TOPICS)
    corrupt = list(topic)
    expected = only()
    for pair in PAIRS:
        places = positions(corrupt, pair)
        kind = data.draw(st.sampled_from(["remove", "key", "kafka", "invalid", "duplicate"]))
        at = data.draw(st.sampled_from(places[1:-1]))
        record = corrupt[at]
        if kind == "remove":
            del corrupt[at]
            expected["holes"].add((pair, record.trade_id, record.trade_id, False))
        elif kind == "key":
            corrupt[at] = Written(record.partition, "X/Y", record.value, record.timestamp_ms)
            expected["key"].add((pair, record.trade_id))
        elif kind == "kafka":
            corrupt[at] = Written(record.partition, record.key, record.value, 1)
            expected["time"].add((pair, record.trade_id))
        elif kind == "invalid":
            corrupt[at] = changed(record, side="both")
            expected["invalid"].add((pair, record.trade_id))
        else:
            corrupt.append(record)
            expected["duplicates"].add((pair, record.trade_id))
    report = audit_report(corrupt)
    assert found(report) == expected
    assert report["summary"]["trades"] == len(corrupt)  # each record counted once


def test_records_that_are_not_trades_are_listed_with_their_offsets() -> None:
    junk = Written(0, "BTC/USD", {"hello": "world"}, 0)
    report = audit_report([*CLEAN[:5], junk, *CLEAN[5:]])
    [item] = report["invalid_without_pair"]
    assert item["partition"] == 0 and item["errors"]
    assert found(report) == only()
    assert report["summary"]["exit_code"] == 1


def test_the_window_and_the_pairs_select_what_is_audited() -> None:
    btc = [r for r in CLEAN if r.pair == "BTC/USD"]
    since, until = btc[10].value["timestamp_ms"], btc[29].value["timestamp_ms"]
    report = audit_report(CLEAN, pairs="btc/*", since_ms=since, until_ms=until)
    [only_pair] = report["pairs"]
    assert only_pair["pair"] == "BTC/USD" and only_pair["trades"] == 20
    assert (only_pair["first_trade_id"], only_pair["last_trade_id"]) == (
        btc[10].trade_id,
        btc[29].trade_id,
    )
    assert report["summary"]["exit_code"] == 0
    absent = audit_report(CLEAN, pairs="BTC/USD,DOGE/USD")
    assert absent["absent_pairs"] == ["DOGE/USD"] and absent["summary"]["exit_code"] == 1
    assert audit_report(CLEAN, pairs="*/EUR")["summary"]["problems"] == {"no_trades": 1}


def test_a_record_without_a_usable_trade_id_counts_once() -> None:
    """On either path that leaves it out of the sequence: the validator's (a trade_id that
    is not a number) and the one for a record without a field the fast path reads."""
    btc = positions(CLEAN, "BTC/USD")
    topic = list(CLEAN)
    topic[btc[5]] = changed(CLEAN[btc[5]], trade_id="x")
    record = CLEAN[btc[6]]
    without = {k: v for k, v in record.value.items() if k != "trade_id"}
    topic[btc[6]] = Written(record.partition, record.key, without, record.timestamp_ms)
    report = audit_report(topic)
    assert pair_report(report, "BTC/USD")["trades"] == len(btc)
    assert pair_report(report, "BTC/USD")["counts"]["invalid"] == 2
