"""Running a Quix Streams application the way both pipelines need it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from quixstreams import Application
from quixstreams.state.exceptions import InvalidStoreChangelogOffset

from ..broker import wait_for_broker

__all__ = ["run_application"]

logger = logging.getLogger(__name__)


def run_application(
    make_app: Callable[[], Application],
    build: Callable[[Application], object],
    broker_timeout: float,
) -> None:
    """Wait for the broker, build the dataframe, run; rebuild local state once if needed.

    Quix Streams creates its topics when the app starts, hence the wait. When the local
    state is ahead of what the broker says its changelog holds (a deleted changelog, or a
    broker that misreports watermarks of compacted topics, as Tansu does), the changelog
    is the source of truth: the local copy is dropped and recovered from it.

    :raises BrokerUnavailable: when no broker answers within `broker_timeout` seconds.
    """
    app = make_app()
    wait_for_broker(app.config.broker_address.as_librdkafka_dict(), broker_timeout)
    build(app)
    try:
        app.run()
    except InvalidStoreChangelogOffset:
        logger.warning("Local state is ahead of its changelog topic: rebuilding it from there")
        app.clear_state()
        app = make_app()
        build(app)
        app.run()
