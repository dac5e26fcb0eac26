"""Progress of histories and big repairs (`sources/kraken/progress.py`, `progress_view.py`),
driven with a fake clock: date reached, share done, trades/s, ETA; log lines and the display."""

from __future__ import annotations

import io
import logging
import os
import re

import pytest

from sources.kraken.progress import Progress, format_duration, format_line
from sources.kraken.progress_view import ProgressDisplay, ProgressLog, progress_view

DAY_MS = 86_400_000
T0 = 1_700_000_000.0  # the fake wall clock's start, epoch seconds


def history(days: int = 30, **options: float) -> Progress:
    progress = Progress(**options)
    progress.start("BTC/USD", int(T0 * 1000) - days * DAY_MS, now=T0)
    return progress


def pages(progress: Progress, pair: str, seconds: int, day_ms: int, since_ms: int, t: float):
    """One page a second for `seconds`: 1,000 trades, `day_ms` of market time each."""
    for i in range(1, seconds + 1):
        progress.advance(pair, since_ms + i * day_ms, 1000, t + i)
    return t + seconds


def test_a_history_up_to_now_reports_date_share_rate_and_eta() -> None:
    progress = history(30)
    since = int(T0 * 1000) - 30 * DAY_MS
    now = pages(progress, "BTC/USD", 10, DAY_MS, since, T0)  # a day of market a second
    (row,) = progress.rows(now)
    assert row.reached_ms == since + 10 * DAY_MS
    assert row.fraction == pytest.approx(10 / 30, rel=1e-4)  # the end moved on by 10 s only
    assert row.trades == 10_000 and row.trades_per_s == pytest.approx(1000)
    # 20 days left, closing in at a day a second less the present's own second per second
    assert row.eta_s == pytest.approx(20 * DAY_MS / (DAY_MS - 1000), rel=1e-3)
    line = format_line(row)
    assert line.startswith("Backfill of BTC/USD: reached ")
    assert re.search(r"reached \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 33\.3 % of 30 d", line), line
    assert "1,000 trades/s, ETA 20 s (10,000 trades so far)" in line


def test_a_fixed_span_has_an_exact_share_and_eta() -> None:
    progress = Progress()
    progress.start("ETH/USD", 0, 100_000, now=T0)
    progress.advance("ETH/USD", 25_000, 10, T0 + 5)  # 5 s of market per second
    (row,) = progress.rows(T0 + 5)
    assert row.fraction == 0.25 and row.end_ms == 100_000
    assert row.eta_s == pytest.approx(15.0)


def test_the_eta_follows_the_recent_pace_not_the_whole_run() -> None:
    progress = history(60, rate_window=10)
    since = int(T0 * 1000) - 60 * DAY_MS
    now = pages(progress, "BTC/USD", 20, DAY_MS, since, T0)  # fast: a day a second
    reached = since + 20 * DAY_MS
    for i in range(1, 31):  # then ten times slower (a busier stretch of the market)
        progress.advance("BTC/USD", reached + i * DAY_MS // 10, 1000, now + i)
    (row,) = progress.rows(now + 30)
    left_days = (int((now + 30) * 1000) - row.reached_ms) / DAY_MS
    assert row.eta_s == pytest.approx(left_days * 10, rel=0.02)


def test_no_pace_yet_is_an_unknown_eta_and_a_stall_shows_in_the_rate() -> None:
    progress = history(30, rate_window=10)
    (row,) = progress.rows(T0)
    assert row.eta_s is None and "ETA unknown" in format_line(row)
    since = int(T0 * 1000) - 30 * DAY_MS
    now = pages(progress, "BTC/USD", 5, DAY_MS, since, T0)
    busy = progress.rows(now)[0].trades_per_s
    stalled = progress.rows(now + 60)[0]  # no page for a minute: REST failing, say
    assert busy == pytest.approx(1000) and stalled.trades_per_s < busy / 5


def test_repairs_show_only_once_they_last_and_a_short_one_never() -> None:
    progress = Progress(min_age=5)
    progress.advance("ETH/USD", 2_000, 1000, T0, first_ms=1_000)  # a gap repair, page one
    progress.advance("SOL/USD", 9_000, 200, T0, first_ms=8_000)
    progress.finish("SOL/USD")  # a one-page repair: over at once
    assert progress.rows(T0 + 4) == [] and progress.lines(T0 + 4) == []
    assert progress.active
    (row,) = progress.rows(T0 + 5)
    assert (row.pair, row.kind, row.since_ms) == ("ETH/USD", "repair", 1_000)
    assert format_line(row).startswith("Repair of ETH/USD: reached ")
    progress.finish("ETH/USD")
    assert not progress.active and progress.rows(T0 + 6) == []
    done = progress.rows(T0 + 6, with_done=True)
    assert [(r.pair, r.done, r.fraction) for r in done] == [("ETH/USD", True, 1.0)]


def test_a_repair_whose_end_is_known_measures_its_share_against_that_end() -> None:
    progress = Progress(min_age=5)
    progress.start("ETH/USD", 1_000_000, 1_600_000, now=T0, kind="repair")
    progress.advance("ETH/USD", 1_150_000, 1000, T0 + 5)
    (row,) = progress.rows(T0 + 5)
    assert (row.kind, row.end_ms, row.fraction) == ("repair", 1_600_000, 0.25)
    assert row.eta_s == pytest.approx(15.0)  # a fixed end: 450 s of market at 30 s a second
    assert format_line(row).startswith("Repair of ETH/USD: reached ")


def test_ended_runs_stay_for_the_display_until_a_new_round_starts() -> None:
    progress = history(30)
    progress.rows(T0)
    progress.finish("BTC/USD")
    progress.finish("BTC/USD")  # twice, and for pairs without a run: harmless
    progress.finish("XRP/USD")
    assert [r.pair for r in progress.rows(T0, with_done=True)] == ["BTC/USD"]
    progress.start("ETH/USD", 0, now=T0 + 1)
    assert [r.pair for r in progress.rows(T0 + 1, with_done=True)] == ["ETH/USD"]


def test_lines_are_bounded_for_hundreds_of_pairs() -> None:
    progress = Progress()
    for n in range(25):
        progress.start(f"C{n:03d}/USD", 0, now=T0)
    lines = progress.lines(T0 + 1, limit=20)
    assert len(lines) == 21 and lines[-1] == "... and 5 more pairs in progress"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (44.6, "45 s"), (200, "3 min 20 s"), (7500, "2 h 05 min"), (30 * 86400, "30 d")],
)
def test_durations_read_in_their_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert format_duration(30 * 86400 + 4 * 3600 + 59) == "30 d 4 h"


def test_the_log_gets_a_report_every_interval_while_a_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    progress = history(30)
    view = ProgressLog(progress, interval=5)
    since = int(T0 * 1000) - 30 * DAY_MS
    with caplog.at_level(logging.INFO, logger="sources.kraken.progress_view"):
        for second in range(12):  # the source's loop turns many times a second
            for tenth in range(10):
                now = T0 + second + tenth / 10
                view.report(now)
            progress.advance("BTC/USD", since + (second + 1) * DAY_MS, 1000, T0 + second + 1)
        progress.finish("BTC/USD")
        view.report(T0 + 30)  # nothing runs: nothing to say
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages  # at 0, 5 and 10 s
    assert all(m.startswith("Backfill of BTC/USD: reached ") for m in messages)
    assert [re.search(r"(\d+\.\d) %", m).group(1) for m in messages] == ["0.0", "16.7", "33.3"]


def test_a_terminal_gets_the_live_display_anything_else_the_log() -> None:
    progress = history(30)
    assert isinstance(progress_view(progress, io.StringIO()), ProgressLog)
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        try:
            assert isinstance(progress_view(progress, terminal), ProgressDisplay)
        finally:
            os.close(leader)


def test_the_display_draws_every_pair_and_leaves_its_last_frame() -> None:
    progress = history(30)
    progress.start("ETH/USD", int(T0 * 1000) - 30 * DAY_MS, now=T0)
    screen = io.StringIO()
    view = ProgressDisplay(progress, screen, refresh=0.5)
    since = int(T0 * 1000) - 30 * DAY_MS
    view.report(T0)
    now = pages(progress, "BTC/USD", 3, DAY_MS, since, T0)
    view.report(now)
    progress.finish("ETH/USD")
    view.report(now + 1)
    progress.finish("BTC/USD")
    view.report(now + 1.1)  # the last frame (both done) at once, not a refresh later
    text = screen.getvalue()
    assert view._live is None  # gone with the last run
    last = text[text.rindex("pair") :]
    assert re.search(r"BTC/USD\s+━+\s+100\.0 %.*done\s+3,000", last), text
    assert re.search(r"ETH/USD\s+━+\s+100\.0 %.*done", last), text
