"""The topic policy of the pipelines' applications: which replication factor a created topic
asks for, and that every topic manager Quix Streams builds (the application's, each
source's, on a plain broker or on Quix Cloud) follows it."""

from __future__ import annotations

import functools
import importlib.metadata
import pickle

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from quixstreams import Application
from quixstreams.models.topics import TopicConfig, TopicManager
from quixstreams.platforms.quix import QuixTopicManager

from sources.app.topic_manager import (
    BROKER_DEFAULT,
    BrokerTopics,
    CloudTopics,
    PipelineApplication,
    TopicPolicy,
)
from sources.app.topics import CANDLES_TOPIC, SOURCE_TOPIC, topic_config
from sources.kraken.quix_internals import CHECKED_WITH, mismatches

ASKED = TopicConfig(num_partitions=3, replication_factor=1, extra_config={"retention.ms": "-1"})


def policy(cls: type, replication: int | None) -> TopicPolicy:
    manager = cls.__new__(cls)  # the policy alone: no admin, no platform
    manager.replication = replication
    return manager


@pytest.mark.parametrize(
    ("cls", "default"),
    [(BrokerTopics, BROKER_DEFAULT), (CloudTopics, None)],
    ids=["broker", "cloud"],
)
def test_a_created_topic_asks_for_the_replication_setting_or_the_default(cls, default) -> None:
    """Whatever Quix Streams or the code put in the config (1 for its changelogs on a plain
    broker), the topic asks for `replication`, or the broker's (-1) / platform's (None)."""
    assert policy(cls, None).creation_config(ASKED) == TopicConfig(
        3, default, {"retention.ms": "-1"}
    )
    assert policy(cls, 3).creation_config(ASKED) == TopicConfig(3, 3, {"retention.ms": "-1"})
    assert policy(cls, None).creation_config(None) == TopicConfig(None, default, {})


def test_no_topic_of_the_code_names_a_replication_factor() -> None:
    for config in (SOURCE_TOPIC, CANDLES_TOPIC, topic_config(6, 30 * 86_400_000)):
        assert config.replication_factor is None


def test_every_topic_manager_of_the_application_follows_the_policy() -> None:
    app = PipelineApplication(
        broker_address="127.0.0.1:1", consumer_group="g", replication=3, never_create=["trades"]
    )
    source_manager = app._get_topic_manager()  # what `add_source` gives each source
    for manager in (app._topic_manager, source_manager):
        assert type(manager) is BrokerTopics
        assert manager.replication == 3 and manager.never_create == {"trades"}
    travelled = pickle.loads(pickle.dumps(source_manager))  # to the source's process
    assert type(travelled) is BrokerTopics and travelled.replication == 3


class StubConfigBuilder:
    """The one call QuixTopicManager's constructor makes to the platform's config builder."""

    @staticmethod
    def strip_workspace_id_prefix(name: str) -> str:
        return name


def test_on_quix_cloud_the_managers_follow_the_policy_with_the_platform_default() -> None:
    app = PipelineApplication(broker_address="127.0.0.1:1", consumer_group="g")
    app._topic_manager_factory = functools.partial(
        QuixTopicManager, quix_config_builder=StubConfigBuilder()
    )  # what Application sets with a Quix Cloud token
    manager = app._get_topic_manager()
    assert type(manager) is CloudTopics and isinstance(manager, QuixTopicManager)
    assert manager.creation_config(ASKED).replication_factor is None


def test_a_plain_application_would_ask_for_one_replica() -> None:
    """Why the policy exists: Quix Streams 3.28's own default on a plain broker."""
    assert TopicManager.default_replication_factor == 1


def test_the_quix_streams_hooks_the_policy_overrides_are_there() -> None:
    """The private methods the policy overrides, as the versions in CHECKED_WITH have them:
    a release that renames or reshapes one fails here, not in a deployment."""
    installed = Version(importlib.metadata.version("quixstreams"))
    assert installed in SpecifierSet(CHECKED_WITH), f"quixstreams {installed}: check the hooks"
    hooks = (
        (Application, "_get_topic_manager", ("self",)),
        (TopicManager, "_create_topic", ("self", "topic", "timeout", "create_timeout")),
        (TopicManager, "_get_or_create_broker_topic", ("self", "topic")),
        (TopicManager, "_fetch_topic", ("self", "topic")),
        (QuixTopicManager, "_create_topic", ("self", "topic", "timeout", "create_timeout")),
    )
    assert mismatches(hooks) == []


def test_an_unknown_topic_manager_keeps_its_own_policy(monkeypatch, caplog) -> None:
    class Other(TopicManager):
        pass

    monkeypatch.setattr(Application, "_get_topic_manager", lambda self: Other.__new__(Other))
    app = PipelineApplication.__new__(PipelineApplication)
    app.replication, app.never_create = 3, frozenset()
    assert type(app._get_topic_manager()) is Other
    assert "Topic manager Other unknown" in caplog.text
