"""Scale-out: several deployments split one set of pairs between them, one shard each.

A pair belongs to shard `crc32(symbol) % shards`: a stable hash (the same in every process,
Python version and machine, unlike `hash()`), of the symbol alone, so a pair Kraken lists later
lands in some shard without moving any other pair. The split is applied to the pairs after
patterns (`*/USD`, `all`) are resolved.

Each shard writes the same output topic but has its own source topic, consumer group (hence
state and changelog topics) and transactional id, all named after the shard; see the README,
"Scaling out". Shards behind one public address share Kraken's REST budget: each one spaces
its REST calls `shards` times as far apart (`rest_min_interval`).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..kraken.config import ConfigError

if TYPE_CHECKING:
    from .settings import TradesSettings

__all__ = [
    "KRAKEN_CONNECT_INTERVAL",
    "KRAKEN_REST_INTERVAL",
    "connect_spacing",
    "consumer_group",
    "rest_min_interval",
    "settings_for_shard",
    "shard_of",
    "shard_pairs",
    "shard_suffix",
    "source_name",
    "transactional_id",
    "validate_shard",
]

logger = logging.getLogger(__name__)

# Seconds between two REST calls from one address: Kraken's public endpoints allow about one
# call per second per IP address (a rolling budget, "EGeneral:Too many requests" past it).
KRAKEN_REST_INTERVAL = 1.0
# Seconds between two WebSocket connection attempts from one address (the connection group's
# own spacing, `connections.CONNECT_SPACING`): Kraken's edge bans reconnect storms.
KRAKEN_CONNECT_INTERVAL = 1.0


def validate_shard(shard: int, shards: int) -> None:
    """Raise `ConfigError` naming `shards` or `shard` unless 1 <= shards and 0 <= shard < shards."""
    if shards < 1:
        raise ConfigError(f"shards: must be 1 or more, got {shards}")
    if not 0 <= shard < shards:
        raise ConfigError(
            f"shard: must be between 0 and shards-1 = {shards - 1} (shards={shards}), got {shard}"
        )


def shard_of(symbol: str, shards: int) -> int:
    """The shard a Kraken v2 symbol belongs to: crc32 of its upper-case UTF-8 bytes."""
    return zlib.crc32(symbol.upper().encode()) % shards


def shard_pairs(pairs: Iterable[str], shard: int, shards: int) -> tuple[str, ...]:
    """The pairs of `pairs` that belong to `shard` of `shards`, in their given order.

    Over the shards 0 .. shards-1 the results are disjoint and together hold every pair.
    """
    validate_shard(shard, shards)
    if shards == 1:
        return tuple(pairs)
    return tuple(pair for pair in pairs if shard_of(pair, shards) == shard)


def settings_for_shard(settings: TradesSettings) -> TradesSettings:
    """`settings` with only this shard's pairs (unchanged with one shard).

    `settings.pairs` must be symbols already (patterns resolved).

    :raises ConfigError: naming `shard` when this shard gets none of the pairs.
    """
    if settings.shards == 1:
        return settings
    mine = shard_pairs(settings.pairs, settings.shard, settings.shards)
    if not mine:
        raise ConfigError(
            f"shard: shard {settings.shard} of {settings.shards} gets none of the "
            f"{len(settings.pairs)} pairs ({', '.join(settings.pairs)}): use fewer shards"
        )
    logger.info(
        "Shard %d of %d: %d of the %d pairs",
        settings.shard,
        settings.shards,
        len(mine),
        len(settings.pairs),
    )
    return replace(settings, pairs=mine)


def shard_suffix(shard: int, shards: int) -> str:
    """`-shard-<shard>-of-<shards>`, or nothing with a single shard (names stay as they were).

    The count is part of it: after a change of `shards` every shard starts with fresh state,
    never with positions another split left behind.
    """
    return "" if shards == 1 else f"-shard-{shard}-of-{shards}"


def source_name(output: str, shard: int, shards: int) -> str:
    """The Kraken source's name; Quix Streams names its topic `source__<name>`."""
    return f"kraken-{output}{shard_suffix(shard, shards)}"


def consumer_group(group: str, default: str, shard: int, shards: int) -> str:
    """The consumer group of one shard.

    A group left at its `default` gets the shard's suffix, so shards never share one; a group
    the user set is taken as it is (each shard deployment sets its own, like any deployment).
    """
    if shards > 1 and group == default:
        return f"{group}{shard_suffix(shard, shards)}"
    return group


def rest_min_interval(shards: int, per_address: float = KRAKEN_REST_INTERVAL) -> float:
    """Seconds between two REST calls of one shard, so that all shards of one address together
    stay within `per_address` (the worst case: every shard repairing at once)."""
    return per_address * max(1, shards)


def connect_spacing(shards: int, per_address: float = KRAKEN_CONNECT_INTERVAL) -> float:
    """Seconds between two WebSocket connection attempts of one shard, so that all shards of
    one address together open at most one connection per `per_address` seconds."""
    return per_address * max(1, shards)


def transactional_id(group: str, output: str, shard: int, shards: int) -> str:
    """The exactly-once producer's id: one per shard, even when shards share a group."""
    suffix = shard_suffix(shard, shards)
    base = f"{group}-{output}"
    return base if not suffix or group.endswith(suffix) else f"{base}{suffix}"
