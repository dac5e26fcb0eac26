"""The layers of `sources/` (pyproject.toml, `[tool.importlinter]`): each package imports only
from the layers below it; the connector (`sources.kraken`) depends on none of the rest."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def contract() -> LayersContract:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [options] = [c for c in config["contracts"] if c["type"] == "layers"]
    options = {key: value for key, value in options.items() if key not in ("name", "type")}
    return LayersContract(
        name="layers",
        session_options={"root_packages": [config["root_package"]]},
        contract_options=options,
    )


@pytest.fixture
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("sources", cache_dir=None)


def test_the_imports_keep_the_layers(contract: LayersContract, graph: grimp.ImportGraph) -> None:
    check = contract.check(graph, verbose=False)
    assert check.kept, check.metadata


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("sources.kraken.source", "sources.observability.sync"),  # the connector -> metrics
        ("sources.kraken.feed", "sources.app.settings"),  # the core -> the pipeline's settings
        ("sources.steps.dedupe", "sources.observability.metrics"),  # siblings
    ],
)
def test_an_upward_or_sideways_import_breaks_the_contract(
    contract: LayersContract, graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="x")
    assert not contract.check(graph, verbose=False).kept
