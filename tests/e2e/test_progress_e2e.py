"""A long history tells how far it is: per pair, the date reached and an ETA, every few seconds.

`pipelines/trades/main.py` fetches a 30-day, two-pair history (`backfill_only`) from the
simulator as a process (the `thirty_day_history` run, shared with test_delivery_e2e.py), its
log captured to a file: not a terminal, so log lines rather than the live display. The market
is small (6,000 trades a pair: some 14 REST calls at one a second), so the run is short yet
spans three reports.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from itertools import pairwise

from tests.support.trades import PAIRS, HistoryRun

DAY = 86_400
MOST_SECONDS_BETWEEN_REPORTS = 10.0
LOG_TIME = r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]"
PROGRESS = re.compile(
    LOG_TIME + r".*Backfill of (\S+): reached (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC, "
    r"([\d.]+) % of 30 d, [\d,]+ trades/s, ETA ([^(]+) \(",
    re.MULTILINE,
)


def _at(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_a_30_day_history_of_two_pairs_logs_each_pair_s_date_reached_and_eta(
    thirty_day_history: HistoryRun,
) -> None:
    assert thirty_day_history.code == 0, thirty_day_history.pipeline.log[-3000:]
    log = thirty_day_history.pipeline.log
    started = _at(re.search(LOG_TIME + r".*Backfilling ", log, re.MULTILINE).group(1))  # type: ignore[union-attr]
    for pair in PAIRS:
        reports = [m for m in PROGRESS.finditer(log) if m.group(2) == pair]
        ended = re.search(LOG_TIME + rf".*Backfill of {re.escape(pair)} complete", log, re.M)
        assert ended, log[-3000:]
        times = [started, *(_at(m.group(1)) for m in reports), _at(ended.group(1))]
        print(f"PROGRESS {pair}: " + " | ".join(m.group(0).split(" : ", 1)[-1] for m in reports))
        assert len(reports) >= 2, log[-3000:]
        gaps = [later - earlier for earlier, later in pairwise(times)]
        assert max(gaps) <= MOST_SECONDS_BETWEEN_REPORTS, (pair, gaps)
        reached = [m.group(3) for m in reports]
        shares = [float(m.group(4)) for m in reports]
        assert reached == sorted(reached) and reached[0] < reached[-1], reached
        assert shares == sorted(shares) and shares[-1] > shares[0], shares
        assert reached[0] >= time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started - 31 * DAY))
        assert all(re.fullmatch(r"\d+ (s|min \d\d s)", m.group(5).strip()) for m in reports[1:])
