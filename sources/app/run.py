"""Running a Quix Streams application the way both pipelines need it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, MutableMapping

from quixstreams import Application
from quixstreams.state.exceptions import InvalidStoreChangelogOffset

from ..broker import wait_for_broker

__all__ = ["broker_address", "on_quix_cloud", "run_application"]

QUIX_TOKEN = "Quix__Sdk__Token"
QUIX_BROKER = "Quix__Broker__Address"


def on_quix_cloud(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when Quix Cloud set its SDK token: the platform connects the app to its broker."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(QUIX_TOKEN))


def broker_address(configured: str, environ: MutableMapping[str, str] | None = None) -> str | None:
    """The `broker_address` to give the Application: the token wins over an address.

    With a Quix Cloud token, Quix Streams configures the broker from the platform, but only
    when no address is given *and* `Quix__Broker__Address` is not in the environment (it reads
    that variable itself and would then skip the Cloud configuration). So with a token the
    variable is removed from the environment (logged) and None is returned.
    """
    environ = os.environ if environ is None else environ
    if not on_quix_cloud(environ):
        return configured
    if environ.pop(QUIX_BROKER, None):
        logger.warning(
            "%s is ignored: %s is set, Quix Cloud connects the app", QUIX_BROKER, QUIX_TOKEN
        )
    return None


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
