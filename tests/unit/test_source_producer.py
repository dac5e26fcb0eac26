"""The source's producer gets its own settings (not idempotent, one request in flight)."""

from __future__ import annotations

import logging

import pytest
from quixstreams import Application

from sources.kraken.quix_internals import has_assignment, tune_producer
from sources.kraken.source import SOURCE_PRODUCER_CONFIG


def test_the_source_producer_is_tuned_before_it_connects() -> None:
    app = Application(broker_address="127.0.0.1:1", consumer_group="g")
    producer = app._get_internal_producer(transactional=False)  # what a Source is given
    tune_producer(producer, SOURCE_PRODUCER_CONFIG)
    config = producer._producer._producer_config
    assert config["enable.idempotence"] is False
    assert config["max.in.flight.requests.per.connection"] == 1
    assert app._get_internal_producer()._producer._producer_config["enable.idempotence"] is True


def test_a_producer_already_connected_is_left_alone_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(broker_address="127.0.0.1:1", consumer_group="g")
    producer = app._get_internal_producer(transactional=False)
    producer._producer._inner_producer = object()  # as if it had produced already
    with caplog.at_level(logging.WARNING):
        tune_producer(producer, SOURCE_PRODUCER_CONFIG)
    assert producer._producer._producer_config["enable.idempotence"] is True
    assert "Could not apply" in caplog.text


def test_an_application_is_asked_for_its_assignment_through_its_consumer() -> None:
    app = Application(broker_address="127.0.0.1:1", consumer_group="g")
    assert has_assignment(app) is False  # a consumer of Quix Streams' shape, nothing assigned
    assert has_assignment(object()) is None  # nothing to ask: the watchdog stands down
