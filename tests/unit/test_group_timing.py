"""The consumer group's session timing follows the broker: short on Tansu, whose join hold is
half the session timeout, standard on Kafka and Redpanda, which refuse a short one."""

from __future__ import annotations

import pytest
from quixstreams.kafka.configuration import ConnectionConfig

from pipelines.candles import main as candles_main
from pipelines.trades import main as trades_main
from sources.app import group_timing as timing
from sources.app.settings import TradesSettings
from sources.candles.settings import CandlesSettings


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("tansu_cluster", timing.SHORT),
        ("redpanda.5c1b7a4e-0d2f-4c3e-9a51-0e6f3c2b1a90", timing.STANDARD),
        ("MkU3OEVBNTcwNTJENDM2Qk", timing.STANDARD),  # Kafka: a random id
        (None, timing.STANDARD),  # no answer
    ],
)
def test_the_session_timing_is_the_short_one_on_tansu_only(
    reported: str | None, expected: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing, "cluster_id", lambda config, timeout: reported)
    assert timing.group_timing(ConnectionConfig(bootstrap_servers="127.0.0.1:9092")) == expected


def test_the_short_session_keeps_three_heartbeats_in_it() -> None:
    short = timing.SHORT
    assert short["session.timeout.ms"] < timing.STANDARD["session.timeout.ms"]
    assert short["heartbeat.interval.ms"] * 3 < short["session.timeout.ms"]


def test_on_quix_cloud_the_broker_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def asked(config, timeout):
        raise AssertionError("Quix Cloud's brokers are Kafka: nothing to ask")

    monkeypatch.setattr(timing, "cluster_id", asked)
    assert timing.group_timing(None) == timing.STANDARD


@pytest.mark.parametrize(
    ("main", "settings_class"),
    [(trades_main, TradesSettings), (candles_main, CandlesSettings)],
    ids=["trades", "candles"],
)
def test_the_applications_consumer_takes_the_timing_it_is_given(main, settings_class) -> None:
    settings = settings_class.from_env({"Quix__Broker__Address": "h:1"})
    for given in (timing.SHORT, timing.STANDARD):
        config = main.make_application(settings, given).config.consumer_extra_config
        assert {name: config[name] for name in given} == given
    assert (
        main.make_application(settings).config.consumer_extra_config["session.timeout.ms"]
        == (timing.STANDARD["session.timeout.ms"])
    )


@pytest.mark.parametrize(
    ("main", "settings_class", "args"),
    [(trades_main, TradesSettings, ((),)), (candles_main, CandlesSettings, (None,))],
    ids=["trades", "candles"],
)
def test_a_pipeline_runs_with_the_brokers_timing_and_makes_its_apps_with_the_timing_given(
    main, settings_class, args, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback to the standard timing after a lost group is `run_application`'s
    (tests/unit/test_app_run.py): each pipeline hands it the broker's timing and an app
    maker that takes the timing it is given."""
    monkeypatch.delenv("Quix__Sdk__Token", raising=False)
    monkeypatch.setattr(main, "group_timing", lambda connection: dict(timing.SHORT))
    made: dict = {}

    def run_application(make, build, timeout, given) -> None:
        made.update(make=make, timing=given)

    monkeypatch.setattr(main, "run_application", run_application)
    main.run(settings_class.from_env({"Quix__Broker__Address": "h:1"}), *args)
    assert made["timing"] == timing.SHORT
    session = {
        name: made["make"](given).config.consumer_extra_config["session.timeout.ms"]
        for name, given in (("short", timing.SHORT), ("standard", timing.STANDARD))
    }
    assert session == {
        "short": timing.SHORT["session.timeout.ms"],
        "standard": timing.STANDARD["session.timeout.ms"],
    }
