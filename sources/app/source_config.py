"""The Kraken source's config, derived once from the trades pipeline's settings."""

from __future__ import annotations

from ..kraken.config import SourceConfig
from . import shards
from .settings import TradesSettings
from .topics import SOURCE_TOPIC

__all__ = ["source_config"]


def source_config(
    settings: TradesSettings, optional_pairs: frozenset[str] = frozenset()
) -> SourceConfig:
    """What the source does, as the settings say (patterns already resolved).

    :param optional_pairs: pairs from `all` or a pattern (a refusal of one is not fatal).
    """
    return SourceConfig(
        pairs=settings.pairs,
        optional_pairs=optional_pairs,
        # source topic: source__kraken-<output>, plus -shard-<shard>-of-<shards> when sharded
        name=shards.source_name(settings.output, settings.shard, settings.shards),
        ws_url=settings.kraken_ws_url,
        rest_url=settings.kraken_rest_url,
        snapshot=settings.snapshot,
        decimal_strings=settings.decimal_strings,
        heartbeat_timeout=settings.heartbeat_timeout,
        connect_spacing=shards.connect_spacing(settings.shards),  # one connection rate
        max_pairs_per_connection=settings.max_pairs_per_connection,
        subscribe_batch=settings.subscribe_batch,
        rest_min_interval=shards.rest_min_interval(settings.shards),  # one budget per address
        backfill_since_ns=settings.backfill_since_ns,
        backfill_only=settings.backfill_only,
        backfill_deadline=settings.backfill_deadline,
        max_gap=settings.max_gap,
        max_held=settings.max_held,
        max_held_bytes=settings.max_held_mb * 2**20,
        repair_timeout=settings.repair_timeout,
        stale_after=settings.stale_after or 0.0,
        stats_interval=settings.stats_interval,
        max_message=settings.max_ws_message_mb * 2**20,
        max_body=settings.max_rest_body_mb * 2**20,
        topic_config=SOURCE_TOPIC,
    )
