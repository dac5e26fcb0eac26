"""A consumer group's session timing, fitted to the broker the group is on.

Before it assigns partitions, a broker holds a consumer's join to its group, so that other
members can join too. Tansu holds a join for half the consumer's `session.timeout.ms`, in whole
seconds (measured with plain consumers: 1.0 s at 2,000 ms, 2.0 s at 2,500 to 4,000 ms, 3.0 s at
6,000 ms), and accepts any session timeout. Kafka and Redpanda hold a new group's first join
for their `group.initial.rebalance.delay.ms` instead (3 s by default, 0 in their development
configurations), and refuse a session timeout under `group.min.session.timeout.ms` (6,000 ms by
default). So a group on Tansu gets a 2,000 ms session, any other broker the 6,000 ms one.

Tansu is known by its cluster id: `tansu_cluster` unless started with another `--cluster-id`
(the embedded broker keeps it). A broker that does not answer gets the standard timing, and so
does a pipeline whose consumer lost its group (`run.run_application`): a Tansu saturated by a
long run can take more than 2 s to answer a heartbeat (seen in a soak at 1,000 trades/s).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from quixstreams.kafka.configuration import ConnectionConfig

from ..broker import broker_reachable

__all__ = ["SHORT", "STANDARD", "TANSU_CLUSTER_ID", "cluster_id", "group_timing"]

logger = logging.getLogger(__name__)

TANSU_CLUSTER_ID = "tansu_cluster"

# Heartbeats a quarter of the session apart: three may go missing before the broker drops the
# member (librdkafka sends them from its own thread, whatever the application is doing).
SHORT: dict[str, int] = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}
STANDARD: dict[str, int] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 2000}

PROBE_TIMEOUT = 1.0  # seconds to wait for the broker's metadata before assuming the standard


def group_timing(
    connection: ConnectionConfig | None, timeout: float = PROBE_TIMEOUT
) -> dict[str, int]:
    """The librdkafka session settings for a consumer group on the broker of `connection`.

    :param connection: the application's connection; None on Quix Cloud, whose brokers are
        Kafka (not asked).
    :param timeout: seconds to wait for the broker's metadata.
    :return: a copy of `SHORT` on Tansu, else of `STANDARD`, to merge into a consumer's config.
    """
    on_tansu = (
        connection is not None
        and cluster_id(connection.as_librdkafka_dict(), timeout) == TANSU_CLUSTER_ID
    )
    return dict(SHORT if on_tansu else STANDARD)


def cluster_id(config: Mapping[str, str], timeout: float = PROBE_TIMEOUT) -> str | None:
    """The cluster id the broker reports in its metadata, None when it does not answer in
    `timeout` seconds."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        if not broker_reachable(str(config.get("bootstrap.servers", "")), timeout):
            return None  # refused at once, where librdkafka would wait out `timeout`
    except ValueError:  # not host:port: librdkafka says so when the application connects
        return None
    admin = AdminClient({**config, "log_level": 0})
    try:
        return admin.list_topics(timeout=timeout).cluster_id
    except KafkaException as exc:
        logger.debug("No metadata from the broker within %g s: %s", timeout, exc)
        return None
