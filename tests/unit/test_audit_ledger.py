"""The audit's trade_id ledger: holes, duplicates, order, in memory bounded by the open holes.

Checked against a naive model that keeps every id (a set): whatever order the ids arrive in,
the ledger finds the same holes, the same duplicates and as many late arrivals.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.audit.ledger import SequenceLedger


def feed(ids: list[int], **options: int) -> SequenceLedger:
    ledger = SequenceLedger(ids[0], 0, **options)
    for position, trade_id in enumerate(ids[1:], start=1):
        ledger.add(trade_id, position, 0, position)
    return ledger


def missing(ledger: SequenceLedger) -> set[int]:
    return {i for h in ledger.holes() for i in range(h.first_id, h.last_id + 1)}


def duplicated(ledger: SequenceLedger) -> set[int]:
    return {i for r in ledger.duplicates for i in range(r.first_id, r.last_id + 1)}


def test_examples() -> None:
    ledger = feed([1, 2, 3, 5, 6, 4, 7, 7, 9, 3])
    assert (ledger.low, ledger.high) == (1, 9)
    assert [(h.first_id, h.last_id) for h in ledger.holes()] == [(8, 8)]
    assert [(r.first_id, r.last_id, r.after_id) for r in ledger.late] == [(4, 4, 6)]
    assert duplicated(ledger) == {7, 3} and ledger.duplicate_records == 2
    before = feed([10, 11, 7, 8])  # a pair's earlier trades arriving after its later ones
    assert (before.low, before.high) == (7, 11)
    assert [(h.first_id, h.last_id) for h in before.holes()] == [(9, 9)]
    assert [(r.first_id, r.last_id, r.after_id) for r in before.late] == [(7, 8, 11)]


def test_a_replayed_block_is_one_run_of_duplicates() -> None:
    ledger = feed([*range(100, 200), *range(150, 200), 200])
    assert [(r.first_id, r.last_id) for r in ledger.duplicates] == [(150, 199)]
    assert ledger.duplicate_records == 50 and not ledger.holes() and not ledger.late


def test_holes_keep_the_times_around_them() -> None:
    ledger = SequenceLedger(1, 1000)
    ledger.add(5, 5000)  # hole 2..4 between 1000 and 5000
    ledger.add(3, 3000)  # splits it: 2..2 (1000..3000) and 4..4 (3000..5000)
    holes = [(h.first_id, h.last_id, h.previous_ms, h.next_ms) for h in ledger.holes()]
    assert holes == [(2, 2, 1000, 3000), (4, 4, 3000, 5000)]


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.lists(st.integers(0, 60), min_size=1, max_size=200))
def test_any_arrival_order_gives_what_a_set_of_every_id_gives(ids: list[int]) -> None:
    ledger = feed(ids)
    seen: set[int] = set()
    dups: set[int] = set()
    late = 0
    highest = ids[0]
    for trade_id in ids:
        if trade_id in seen:
            dups.add(trade_id)
        else:
            late += trade_id < highest
            seen.add(trade_id)
        highest = max(highest, trade_id)
    assert (ledger.low, ledger.high) == (min(ids), max(ids))
    assert missing(ledger) == set(range(min(ids), max(ids) + 1)) - seen
    assert duplicated(ledger) == dups
    assert ledger.duplicate_records == len(ids) - len(seen)
    assert ledger.late_records == late
    assert not ledger.undetermined


def test_past_the_open_hole_bound_old_holes_close_and_their_late_ids_are_undetermined() -> None:
    ledger = feed([1, 3, 5, 7, 9], max_open_holes=2)  # holes 2, 4, 6, 8: 2 and 4 close
    assert [(h.first_id, h.last_id) for h in ledger.holes()] == [(2, 2), (4, 4), (6, 6), (8, 8)]
    assert ledger.open_holes == 2
    ledger.add(4, 0)  # a late arrival into a closed hole, or a duplicate: cannot tell
    ledger.add(3, 0)
    ledger.add(6, 0)  # into an open hole: still exact
    assert [r.first_id for r in ledger.undetermined] == [4, 3]
    assert [h.first_id for h in ledger.holes()] == [2, 4, 8]  # 4 stays reported as a hole
    assert ledger.late_records == 1 and not ledger.duplicates


def test_memory_is_the_open_holes_not_the_trades() -> None:
    ledger = SequenceLedger(0, 0)
    for trade_id in range(1, 1_000_000):
        if trade_id % 100_000:  # ten holes of one trade
            ledger.add(trade_id, trade_id)
    assert ledger.open_holes == 9 and ledger.high == 999_999


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.lists(st.tuples(st.integers(0, 60), st.booleans()), min_size=2, max_size=200))
def test_ledgers_of_two_readers_merge_into_what_one_set_of_every_id_gives(
    arrivals: list[tuple[int, bool]],
) -> None:
    """A pair's records split between two partitions (a wrong key), read by two readers."""
    first = [i for i, mine in arrivals if mine] or [arrivals[0][0]]
    second = [i for i, mine in arrivals if not mine] or [arrivals[-1][0]]
    merged = feed(first)
    merged.merge(feed(second))
    every = first + second
    assert (merged.low, merged.high) == (min(every), max(every))
    assert missing(merged) == set(range(min(every), max(every) + 1)) - set(every)
    assert duplicated(merged) == {i for i in every if every.count(i) > 1}
    assert merged.duplicate_records == len(every) - len(set(every))
