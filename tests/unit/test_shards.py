"""Splitting pairs between shards: stable, disjoint, covering; names and budgets per shard."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from sources.app.settings import TradesSettings
from sources.app.shards import (
    connect_spacing,
    consumer_group,
    rest_min_interval,
    settings_for_shard,
    shard_of,
    shard_pairs,
    source_name,
    transactional_id,
    validate_shard,
)
from sources.kraken.config import ConfigError
from tests.support.descriptors import effective_variables
from tests.support.repo import ROOT

symbols = st.from_regex(r"[A-Z0-9]{1,8}/[A-Z0-9]{1,8}", fullmatch=True)
pair_lists = st.lists(symbols, unique=True, max_size=60)


@given(pair_lists, st.integers(1, 12))
def test_shards_are_disjoint_and_together_hold_every_pair_in_order(
    pairs: list[str], shards: int
) -> None:
    split = [shard_pairs(pairs, shard, shards) for shard in range(shards)]
    together = [pair for part in split for pair in part]
    assert sorted(together) == sorted(pairs)  # each pair in exactly one shard
    for part in split:
        assert list(part) == [p for p in pairs if p in part]  # the given order kept


@given(pair_lists, symbols, st.integers(2, 12))
def test_a_pair_added_later_moves_no_other_pair(pairs: list[str], new: str, shards: int) -> None:
    old = [pair for pair in pairs if pair != new]
    for shard in range(shards):
        grown = shard_pairs([*old, new], shard, shards)
        assert tuple(p for p in grown if p != new) == shard_pairs(old, shard, shards)


def test_the_symbol_case_does_not_matter() -> None:
    assert all(shard_of(p, 5) == shard_of(p.lower(), 5) for p in ("BTC/USD", "ETH/EUR"))


def test_many_pairs_spread_over_every_shard() -> None:
    pairs = [f"C{i}/USD" for i in range(500)]
    sizes = [len(shard_pairs(pairs, shard, 4)) for shard in range(4)]
    assert min(sizes) > 500 / 4 * 0.7  # roughly even, no empty shard


def test_one_shard_is_everything_and_keeps_the_old_names() -> None:
    pairs = ("BTC/USD", "ETH/USD")
    assert shard_pairs(pairs, 0, 1) == pairs
    assert source_name("trades", 0, 1) == "kraken-trades"
    assert consumer_group("kraken-trades", "kraken-trades", 0, 1) == "kraken-trades"
    assert transactional_id("kraken-trades", "trades", 0, 1) == "kraken-trades-trades"
    assert rest_min_interval(1) == 1.0


@pytest.mark.parametrize(
    ("shard", "shards", "setting"), [(0, 0, "shards"), (2, 2, "shard"), (-1, 3, "shard")]
)
def test_invalid_shard_settings_are_refused_naming_the_setting(
    shard: int, shards: int, setting: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^{setting}: "):
        validate_shard(shard, shards)
    with pytest.raises(ConfigError):
        shard_pairs(["BTC/USD"], shard, shards)


def test_each_shard_has_its_own_source_group_and_transactional_id() -> None:
    names = {
        (
            source_name("trades", shard, 3),
            consumer_group("kraken-trades", "kraken-trades", shard, 3),
            transactional_id("kraken-trades", "trades", shard, 3),
        )
        for shard in range(3)
    }
    for position in range(3):
        assert len({name[position] for name in names}) == 3
    # a group the user set is theirs; the transactional id still tells the shards apart
    assert consumer_group("usd-0", "kraken-trades", 0, 2) == "usd-0"
    assert transactional_id("same", "trades", 0, 2) != transactional_id("same", "trades", 1, 2)


def test_shards_behind_one_address_stay_within_one_rest_call_a_second() -> None:
    for shards in (1, 2, 5):
        assert shards / rest_min_interval(shards) <= 1.0


def test_shards_behind_one_address_stay_within_one_connection_attempt_a_second() -> None:
    for shards in (1, 2, 5):
        assert shards / connect_spacing(shards) <= 1.0


def test_the_trades_pipeline_gives_its_source_the_shard_s_spacing() -> None:
    """`make_source` scales both of Kraken's per-address budgets by the shard count."""
    import runpy

    main = runpy.run_path(str(Path(__file__).parents[2] / "pipelines" / "trades" / "main.py"))
    source = main["make_source"](TradesSettings(shards=4, shard=1))
    assert source.config.connect_spacing == connect_spacing(4) > connect_spacing(1)
    assert source.config.rest_min_interval == rest_min_interval(4) > rest_min_interval(1)


def test_the_settings_of_a_shard_hold_its_pairs_only() -> None:
    pairs = tuple(f"C{i}/USD" for i in range(20))
    settings = TradesSettings(pairs=pairs, shards=3, shard=1)
    assert settings_for_shard(settings).pairs == shard_pairs(pairs, 1, 3)
    single = TradesSettings(pairs=pairs)
    assert settings_for_shard(single) is single


def test_a_shard_without_pairs_is_a_configuration_error() -> None:
    pair = "BTC/USD"
    empty = next(s for s in range(4) if shard_of(pair, 4) != s)
    with pytest.raises(ConfigError, match=rf"^shard: shard {empty} of 4 gets none of the 1 pairs"):
        settings_for_shard(TradesSettings(pairs=(pair,), shards=4, shard=empty))


def test_the_shard_deployments_in_quix_yaml_split_one_set_of_pairs_into_one_topic() -> None:
    descriptor = YAML(typ="safe").load((ROOT / "quix.yaml").read_text())
    topics = {t["name"]: t["configuration"] for t in descriptor["topics"]}
    trades = [
        effective_variables(d)
        for d in descriptor["deployments"]
        if d["application"].endswith("trades")
    ]
    sharded = [values for values in trades if int(values["shards"]) > 1]
    assert sharded, "quix.yaml shows no sharded deployment"
    shards = int(sharded[0]["shards"])
    assert sorted(int(d["shard"]) for d in sharded) == list(range(shards))  # every shard once
    for name in ("pairs", "shards", "output", "gaps_output", "partitions"):  # one split, one topic
        assert len({d[name] for d in sharded}) == 1, name
    assert len({d["Quix__Consumer_Group"] for d in sharded}) == shards  # each its own state
    for topic in (sharded[0]["output"], sharded[0]["gaps_output"]):
        assert topics[topic]["partitions"] == int(sharded[0]["partitions"])
