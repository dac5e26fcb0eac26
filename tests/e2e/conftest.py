"""Pipeline runs that several end-to-end tests read: a pipeline process is what costs."""

from __future__ import annotations

import pytest

from simulator import Market
from tests.support.trades import PAIRS, HistoryRun, run_history

DAY = 86_400


@pytest.fixture(scope="session")
def thirty_day_history(broker: str, tmp_path_factory: pytest.TempPathFactory) -> HistoryRun:
    """A 30-day, two-pair history (`backfill_only`) run to its end: 6,000 trades a pair spread
    over 30 days, 6 REST pages each, some 14 calls at Kraken's one a second."""
    market = Market(PAIRS, seed=41)
    market.seed_history(count_per_pair=6000, span_seconds=30 * DAY)
    return run_history(broker, tmp_path_factory.mktemp("history"), market)
