"""The shipped example transforms: right in both value modes (JSON numbers, and exact decimal
strings with `decimal_strings=true`), and every variable they read is declared for Quix Cloud
with the default they use."""

from __future__ import annotations

import ast
from decimal import Decimal

import pytest

from pipelines.trades import transforms_example
from sources.app.variables import TRADES
from tests.support.descriptors import ROOT

NUMBERS = {"pair": "BTC/USD", "price": 50000.5, "volume": 0.02}
STRINGS = {"pair": "BTC/USD", "price": "50000.5", "volume": "0.02"}  # decimal_strings=true


def test_notional_in_both_value_modes() -> None:
    assert transforms_example.notional(NUMBERS) == pytest.approx(1000.01)
    exact = transforms_example.notional(STRINGS)
    assert exact == "1000.010"  # text stays text, exact: no float rounding
    assert Decimal(exact) == Decimal("50000.5") * Decimal("0.02")


@pytest.mark.parametrize("record", [NUMBERS, STRINGS], ids=["numbers", "strings"])
def test_the_threshold_filter_in_both_value_modes(record: dict) -> None:
    assert transforms_example.worth_at_least(Decimal("1000.01"))(record)  # exactly at it
    assert not transforms_example.worth_at_least(Decimal("1000.02"))(record)


class RecordingFrame:
    """Stands for the StreamingDataFrame: keeps the steps the transform adds."""

    def __init__(self) -> None:
        self.steps: list = []

    def apply(self, step):
        self.steps.append(step)
        return self

    filter = apply


@pytest.mark.parametrize("record", [NUMBERS, STRINGS], ids=["numbers", "strings"])
def test_the_transforms_run_on_records_of_either_mode(
    record: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("min_notional", "1000")
    frame = RecordingFrame()
    transforms_example.min_notional(transforms_example.add_notional(frame))
    add, keep = frame.steps
    extended = add(record)
    assert extended["notional"] == transforms_example.notional(record)
    assert keep(extended) is True
    monkeypatch.setenv("min_notional", "5000")
    assert transforms_example.min_notional(RecordingFrame()).steps[0](extended) is False


def environment_reads(path) -> dict[str, str]:
    """`os.environ.get(NAME, DEFAULT)` calls in a module: NAME -> DEFAULT."""
    reads = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("os.environ.get", "os.getenv")
            and len(node.args) == 2
        ):
            reads[node.args[0].value] = node.args[1].value
    return reads


def test_every_variable_the_example_reads_is_declared_for_cloud_with_its_default() -> None:
    reads = environment_reads(ROOT / "pipelines" / "trades" / "transforms_example.py")
    assert reads == {"min_notional": "1000"}
    declared = {v.name: v for v in TRADES}
    for name, default in reads.items():
        assert declared[name].cloud and declared[name].default == default, name
