"""The connect schedule, driven by a fake clock: spacing across connections, each one's
backoff growing until a connection lasts `healthy_after`. No socket, no sleep."""

from __future__ import annotations

import math
import random
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.kraken.schedule import CONNECT_SPACING, ConnectSchedule
from tests.support.examples import examples


def attempts_until_all_named(schedule: ConnectSchedule, count: int, now: float) -> list[float]:
    """Follow the schedule's own wake-up times until `count` connections were named, each
    opening at once; the times of the attempts."""
    times: list[float] = []
    while len(times) < count:
        index = schedule.next_to_open(now)
        if index is None:
            wake = schedule.wake_at()
            assert wake > now, "nothing to do now, yet nothing later either"
            now = wake
            continue
        times.append(now)
        schedule.opened(index, now)
    return times


def test_at_start_connections_open_one_after_the_other_spacing_apart() -> None:
    schedule = ConnectSchedule(3, spacing=1.0)
    assert schedule.next_to_open(0.0) == 0
    assert schedule.next_to_open(0.5) is None  # the group's spacing
    assert schedule.wake_at() == 1.0
    assert schedule.next_to_open(1.0) == 1
    assert schedule.next_to_open(2.0) == 2
    assert schedule.next_to_open(3.0) is None and schedule.wake_at() == math.inf  # none waits


def test_after_a_blip_every_connection_comes_back_spacing_apart_and_not_before_its_due() -> None:
    count, spacing = 6, 1.0
    schedule = ConnectSchedule(count, spacing=spacing, rng=random.Random(5))
    attempts_until_all_named(schedule, count, 0.0)
    blip = 60.0
    due = {}
    for index in range(count):  # all lost at once: full jitter over 0..1 s each
        due[index] = blip + schedule.lost(index, blip)
    assert max(due.values()) - min(due.values()) < spacing * (count - 1)  # they would crowd
    reopened: list[tuple[float, int]] = []
    now = blip
    while len(reopened) < count:
        index = schedule.next_to_open(now)
        if index is None:
            now = schedule.wake_at()
            continue
        reopened.append((now, index))
        schedule.opened(index, now)
    times = [at for at, _ in reopened]
    assert all(b - a >= spacing - 1e-9 for a, b in pairwise(times)), times  # float sums
    assert all(at >= due[index] for at, index in reopened)
    assert sorted(index for _, index in reopened) == list(range(count))


def test_the_connection_due_first_goes_first() -> None:
    schedule = ConnectSchedule(3, spacing=0.0, rng=random.Random(1))
    attempts_until_all_named(schedule, 3, 0.0)
    due = {index: 10.0 + schedule.lost(index, 10.0) for index in (2, 0, 1)}
    order = []
    now = 10.0
    while len(order) < 3:
        index = schedule.next_to_open(now)
        if index is None:
            now = schedule.wake_at()
            continue
        order.append(index)
    assert order == sorted(due, key=due.__getitem__)


def open_on_a_whole_second(schedule: ConnectSchedule, now: float) -> float:
    """Open connection 0 on the first whole second it may: durations from there are exact."""
    now = float(math.ceil(max(now, schedule.wake_at())))
    assert schedule.next_to_open(now) == 0
    schedule.opened(0, now)
    return now


def test_the_backoff_grows_while_connections_do_not_last_and_starts_over_once_one_does() -> None:
    schedule = ConnectSchedule(
        1, spacing=1.0, max_backoff=16.0, healthy_after=30.0, rng=random.Random(7)
    )
    ceiling = schedule.policies[0].backoff.ceiling
    now = 0.0
    delays, ceilings = [], []
    for _ in range(7):  # connections that last 29.9 s: not healthy
        now = open_on_a_whole_second(schedule, now) + 29.9
        ceilings.append(ceiling())
        delays.append(schedule.lost(0, now))
    assert ceilings == [1, 2, 4, 8, 16, 16, 16]  # doubling up to max_backoff
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert schedule.attempt(0) == 7
    now = open_on_a_whole_second(schedule, now) + 30.0  # this one lasted healthy_after
    assert schedule.lost(0, now) <= 1.0 and schedule.attempt(0) == 1


def test_an_attempt_that_never_opens_grows_the_backoff_too() -> None:
    schedule = ConnectSchedule(1, spacing=0.0, rng=random.Random(2))
    now = 0.0
    for attempt in range(1, 5):
        assert schedule.next_to_open(now) == 0
        now += 10.0  # the handshake timed out
        schedule.lost(0, now)
        assert schedule.attempt(0) == attempt
        assert schedule.due(0) >= now
        now = schedule.wake_at()


def test_a_connection_being_opened_or_open_is_not_named_again() -> None:
    schedule = ConnectSchedule(1, spacing=0.0)
    assert schedule.next_to_open(0.0) == 0
    assert schedule.next_to_open(5.0) is None  # under way
    schedule.opened(0, 5.0)
    assert schedule.next_to_open(100.0) is None and schedule.wake_at() == math.inf


def test_closing_on_purpose_reopens_at_once_without_backoff() -> None:
    schedule = ConnectSchedule(2, spacing=1.0)
    attempts_until_all_named(schedule, 2, 0.0)
    schedule.closed(0)
    schedule.closed(1)
    assert schedule.attempt(0) == schedule.attempt(1) == 0
    assert schedule.next_to_open(2.0) == 0 and schedule.next_to_open(2.5) is None  # spaced
    assert schedule.next_to_open(3.0) == 1


def test_the_default_spacing_is_a_second() -> None:
    assert ConnectSchedule(2).spacing == CONNECT_SPACING == 1.0


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), count=st.integers(1, 5), spacing=st.sampled_from([0.5, 1.0, 3.0]))
def test_whatever_happens_attempts_are_spaced_and_never_before_due(
    data: st.DataObject, count: int, spacing: float
) -> None:
    """Any run of openings, failed attempts and losses, at any times."""
    schedule = ConnectSchedule(count, spacing=spacing, rng=random.Random(data.draw(st.integers())))
    now = 0.0
    earliest = [0.0] * count  # when each one may be attempted (its due)
    state = ["waiting"] * count
    attempts: list[float] = []
    for _ in range(data.draw(st.integers(1, 40))):
        now += data.draw(st.floats(0.0, 5.0))
        index = schedule.next_to_open(now)
        if index is not None:
            assert state[index] == "waiting" and now >= earliest[index]
            attempts.append(now)
            state[index] = "connecting"
        waiting_due = [earliest[i] for i in range(count) if state[i] == "waiting"]
        if waiting_due:
            assert schedule.wake_at() >= min(waiting_due)
        for i in range(count):
            if state[i] == "connecting":
                event = data.draw(st.sampled_from(["opened", "failed", "later"]))
            elif state[i] == "open":
                event = data.draw(st.sampled_from(["lost", "later"]))
            else:
                continue
            if event == "opened":
                schedule.opened(i, now)
                state[i] = "open"
            elif event in ("failed", "lost"):
                earliest[i] = now + schedule.lost(i, now)
                state[i] = "waiting"
    assert all(b - a >= spacing - 1e-9 for a, b in pairwise(attempts))  # float sums
