"""The audit's command line, its settings and its report for people (its import boundary:
tests/unit/test_layers.py)."""

from __future__ import annotations

import io

import pytest

from simulator import Market
from sources.audit.cli import main
from sources.audit.render import render
from sources.audit.report import exit_code
from sources.audit.settings import AuditSettings, UsageError
from tests.support.audit import audit_report, changed, gap_event, market_topic

NOW = 1_800_000_000_000


def test_options_win_over_variables_which_win_over_defaults() -> None:
    env = {"INPUT": "from-env", "pairs": "btc/usd", "verify_rest": "true", "strict": "yes"}
    settings = AuditSettings.parse(["--input", "from-option", "--no-verify-rest"], env)
    assert settings.input == "from-option"
    assert settings.pairs.symbols == {"BTC/USD"}
    assert settings.verify_rest is False and settings.strict is True
    assert AuditSettings.parse(["--topic", "t", "--gaps", "g", "--broker", "h:1"], {}) == (
        AuditSettings(input="t", gaps_input="g", broker_address="h:1")
    )


def test_a_window_of_durations_or_times() -> None:
    settings = AuditSettings.parse(["--since", "2h", "--until", "30m"], {}, now_ms=NOW)
    assert (settings.since_ms, settings.until_ms) == (NOW - 7_200_000, NOW - 1_800_000)
    iso = AuditSettings.parse(
        ["--since", "2026-01-02T03:04:05.678", "--until", "now"], {}, now_ms=NOW
    )
    assert iso.since_ms == 1767323045678 and iso.until_ms == NOW
    assert AuditSettings.parse(["--since", "2026-01-02T04:04:05+01:00"], {}).since_ms == (
        1767323045000
    )


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--pairs", "BTCUSD"], "pairs"),
        (["--pairs", "B*C/USD"], "pairs"),
        (["--since", "yesterday"], "since"),
        (["--since", "1h", "--until", "2h"], "until"),
        (["--rest-interval", "0"], "rest_interval"),
        (["--idle-timeout", "x"], "idle_timeout"),
        (["--input", "no spaces"], "input"),
        (["--kraken-rest-url", "ftp://x"], "kraken_rest_url"),
        (["--max-findings", "1.5"], "max_findings"),
        # the one list's kinds and ranges (sources/app/variables.py), as docs/audit.md says
        (["--rest-interval", "inf"], "rest_interval"),
        (["--idle-timeout", "1e9"], "idle_timeout"),
        (["--workers", "0"], "workers"),
        (["--workers", "\u0663"], "workers"),
        (["--loglevel", "verbose"], "loglevel"),
        (["--broker", "host:99999"], "Quix__Broker__Address"),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(argv: list[str], named: str) -> None:
    with pytest.raises(UsageError, match=f"^{named}: "):
        AuditSettings.parse(argv, {})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"strict": "maybe"}, "strict"),
        ({"json": "2"}, "json"),
        ({"max_findings": "0"}, "max_findings"),
    ],
)
def test_a_bad_variable_is_a_usage_error_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(UsageError, match=f"^{named}: expected "):
        AuditSettings.from_env(env)


def test_usage_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pairs", "BTCUSD"]) == 2
    assert "Usage error: pairs: 'BTCUSD' is not a Kraken v2 symbol" in capsys.readouterr().err
    assert main(["--no-such-option"]) == 2
    assert main(["--help"]) == 0
    assert "exit codes: 0 nothing wrong" in " ".join(capsys.readouterr().out.split())


def test_exit_codes() -> None:
    assert exit_code({}, 0, strict=False, incomplete=False) == 0
    assert exit_code({}, 3, strict=False, incomplete=False) == 0
    assert exit_code({}, 3, strict=True, incomplete=False) == 1
    assert exit_code({"duplicates": 1}, 0, strict=False, incomplete=True) == 1
    assert exit_code({}, 0, strict=False, incomplete=True) == 2


def test_the_report_for_people_names_each_finding_with_its_trade_ids() -> None:
    market = Market(["BTC/USD", "ETH/USD"], seed=5)
    market.seed_history(count_per_pair=30, span_seconds=300)
    topic = market_topic(market)
    btc = [i for i, r in enumerate(topic) if r.pair == "BTC/USD"]
    eth = [i for i, r in enumerate(topic) if r.pair == "ETH/USD"]
    hole_id, explained_id = topic[btc[5]].trade_id, topic[eth[7]].trade_id
    corrupt = [r for i, r in enumerate(topic) if i not in (btc[5], eth[7])]
    corrupt[btc[10]] = changed(corrupt[btc[10]], side="up")
    corrupt.append(topic[btc[3]])
    report = audit_report(corrupt, [gap_event("ETH/USD", explained_id, explained_id)])
    out = io.StringIO()
    render(report, out)
    text = out.getvalue()
    assert f"hole {hole_id}..{hole_id} (1 trade," in text and "UNEXPLAINED" in text
    assert f"hole {explained_id}..{explained_id}" in text and "explained: rest_lacks" in text
    assert f"duplicate trade_id {topic[btc[3]].trade_id}" in text
    assert "invalid: trade_id" in text and "side" in text
    assert text.rstrip().endswith("Exit code 1.")


def test_progress_lines_say_how_far_how_fast_and_how_long_still() -> None:
    from sources.audit.progress import Progress, eta_text

    assert eta_text(250, 1000, 10.0) == "about 30 s left"
    assert eta_text(100, 1000, 60.0) == "about 9 min left"
    assert eta_text(0, 1000, 1.0) == "time left unknown"
    clock = iter([0.0, 10.0, 12.0, 20.0])
    out = io.StringIO()
    with Progress(out, interval=5.0, clock=lambda: next(clock)).task("Reading", "records") as step:
        step(1_000, 4_000)  # at 10 s: a line
        step(1_500, 4_000)  # at 12 s: too soon for another
        step(2_000, None)  # at 20 s: a line, total unknown
    assert out.getvalue().splitlines() == [
        "Reading: 1,000 of ~4,000 records (25 %), 100/s, about 30 s left",
        "Reading: 2,000 records, 100/s, time left unknown",
    ]
