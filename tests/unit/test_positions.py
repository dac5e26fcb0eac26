"""Where each pair starts (`sources.kraken.positions`): its saved position, else the last trade
of it already written, in the output topic or in the source topic."""

from __future__ import annotations

import logging

import pytest

from sources.kraken.positions import latest, starting_positions


def test_the_latest_position_of_each_pair_wins() -> None:
    output = {"BTC/USD": (100, 1_000), "ETH/USD": (50, 2_000)}
    source_topic = {"BTC/USD": (90, 900), "ETH/USD": (70, 2_500), "SOL/USD": (5, 3_000)}
    assert latest(output, source_topic) == {
        "BTC/USD": (100, 1_000),
        "ETH/USD": (70, 2_500),
        "SOL/USD": (5, 3_000),
    }
    assert latest() == {} and latest(output) == output


def test_a_saved_position_wins_and_the_others_start_from_what_was_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    saved = {"BTC/USD": (80, 800)}
    written = {"BTC/USD": (100, 1_000), "ETH/USD": (70, 2_500)}
    assert starting_positions(saved, written) == {"BTC/USD": (80, 800), "ETH/USD": (70, 2_500)}
    assert "No saved position for ETH/USD (trade_id 70): starting from" in caplog.text
    assert "BTC/USD (trade_id" not in caplog.text
