"""Several readers: partitions shared out, their audits merged into what one reader finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Market
from sources.audit.accounting import TopicAudit
from sources.audit.explain import GapEvents
from sources.audit.pairs import PairSelection
from sources.audit.parallel import available_cpus, share_out
from sources.audit.reader import ReadStats
from sources.audit.report import build_report
from sources.audit.settings import AuditSettings
from tests.support.audit import Written, changed, found, market_topic, messages
from tests.support.examples import examples

PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "DOGE/USD")
_MARKET = Market(PAIRS, seed=43)
_MARKET.seed_history(count_per_pair=30, span_seconds=300)
# pairs on three partitions (one holds two)
CLEAN = [
    Written(PAIRS.index(r.pair) % 3, r.key, r.value, r.timestamp_ms) for r in market_topic(_MARKET)
]
PARTITIONS = [0, 1, 2]


def report_of(audit: TopicAudit) -> dict:
    return build_report(AuditSettings(), audit, ReadStats(), GapEvents())


def read_by(topic: list[Written], groups: list[list[int]]) -> TopicAudit:
    """What the readers of these groups of partitions find, merged as the parent does."""
    whole = TopicAudit(PairSelection(everything=True))
    batch = messages(topic)
    for group in groups:
        part = whole.blank()
        part.add_batch([m for m in batch if m.partition() in group])
        whole.merge(part)
    return whole


def test_partitions_are_dealt_round_robin_to_at_most_one_reader_each() -> None:
    assert share_out([0, 1, 2], 2) == [[0, 2], [1]]
    assert share_out([0, 1, 2], 8) == [[0], [1], [2]]
    assert share_out([5], 0) == [[5]]
    assert available_cpus() >= 1


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_merged_readers_find_what_one_reader_finds(data) -> None:
    corrupt = list(CLEAN)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(1, len(corrupt) - 2))
        kind = data.draw(st.sampled_from(["remove", "duplicate", "invalid", "time"]))
        if kind == "remove":
            del corrupt[at]
        elif kind == "duplicate":
            corrupt.append(corrupt[at])
        elif kind == "invalid":
            corrupt[at] = changed(corrupt[at], side="up")
        else:
            record = corrupt[at]
            corrupt[at] = Written(record.partition, record.key, record.value, 0)
    one = found(report_of(read_by(corrupt, [PARTITIONS])))
    workers = data.draw(st.integers(2, len(PARTITIONS)))
    assert found(report_of(read_by(corrupt, share_out(PARTITIONS, workers)))) == one


def test_a_pair_split_over_partitions_by_a_wrong_key_is_merged() -> None:
    """A record on another partition: no hole where it belongs, no duplicate; the pair's
    home stays where most of its records are."""
    btc = [i for i, r in enumerate(CLEAN) if r.pair == "BTC/USD"]
    home = CLEAN[btc[0]].partition
    elsewhere = next(p for p in PARTITIONS if p != home)
    moved = CLEAN[btc[10]]
    corrupt = list(CLEAN)
    corrupt[btc[10]] = Written(elsewhere, "SOL/USD", moved.value, moved.timestamp_ms)
    merged = read_by(corrupt, [[p] for p in PARTITIONS])
    report = report_of(merged)
    btc_report = next(p for p in report["pairs"] if p["pair"] == "BTC/USD")
    assert not btc_report["holes"] and not btc_report["duplicates"]
    assert [k["trade_id"] for k in btc_report["key_mismatches"]] == [moved.trade_id]
    assert btc_report["partition"] == home and merged.pairs["BTC/USD"].elsewhere == 1
