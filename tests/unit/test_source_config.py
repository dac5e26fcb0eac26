"""The source's settings in one frozen object: built once from the pipeline's settings,
checked at once, handed down whole (the core reads its part through `SourceConfig.feed`)."""

from __future__ import annotations

import pytest

from sources.app.settings import TradesSettings
from sources.app.source_config import source_config
from sources.kraken.config import ConfigError, FeedConfig, SourceConfig
from sources.kraken.source import KrakenTradesSource


def test_the_pipeline_settings_become_one_source_config() -> None:
    settings = TradesSettings.from_env(
        {"pairs": "btc/usd,ETH/USD", "max_held": "7", "max_held_mb": "3", "stale_after": "0"}
    )
    config = source_config(settings, frozenset({"ETH/USD", "SOL/USD"}))
    assert config.pairs == ("BTC/USD", "ETH/USD")
    assert config.optional_pairs == {"ETH/USD"}  # only pairs it streams
    feed = config.feed()
    assert (feed.max_held, feed.max_held_bytes, feed.stale_after) == (7, 3 * 2**20, 0.0)
    assert feed.repair and feed.backfill_since_ns is None


def test_the_core_s_defaults_are_stated_once() -> None:
    config, feed = SourceConfig(pairs=("BTC/USD",)), FeedConfig(pairs=("BTC/USD",))
    for name in ("max_gap", "max_held", "max_held_bytes", "repair_timeout", "stale_after"):
        assert getattr(config, name) == getattr(feed, name), name
    assert config.feed() == feed


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"pairs": ()}, "pairs"),
        ({"pairs": ("BTC/",)}, "pairs"),
        ({"pairs": ("*/USD",)}, "pairs"),
        ({"pairs": ("BTC/USD",), "heartbeat_timeout": 0}, "heartbeat_timeout"),
        ({"pairs": ("BTC/USD",), "backfill_only": True}, "backfill_only"),
        ({"pairs": ("BTC/USD",), "backfill_since_ns": 1, "rest_url": None}, "backfill"),
    ],
)
def test_a_bad_config_fails_at_once_naming_what_is_wrong(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        SourceConfig(**options)  # type: ignore[arg-type]


def test_the_keyword_form_of_0_1_still_builds_a_source_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="pass a SourceConfig"):
        source = KrakenTradesSource(["BTC/USD"], ws_url="ws://127.0.0.1:1/v2", max_held=5)
    assert source.config.ws_url == "ws://127.0.0.1:1/v2" and source.config.max_held == 5
    with pytest.raises(TypeError, match="belong in the config"):
        KrakenTradesSource(SourceConfig(pairs=("BTC/USD",)), max_held=5)
