"""The contracts of `sources/` (pyproject.toml, `[tool.importlinter]`): each package imports
only from the layers below it; the connector (`sources.kraken`) depends on none of the rest;
the audit (`sources.audit`) imports nothing of the pipeline's core (`sources.kraken`,
`sources.steps`), directly or through another package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parents[2]


def _contract(kind: type[LayersContract | ForbiddenContract], type_name: str):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [options] = [c for c in config["contracts"] if c["type"] == type_name]
    options = {key: value for key, value in options.items() if key not in ("name", "type")}
    return kind(
        name=type_name,
        session_options={"root_packages": [config["root_package"]]},
        contract_options=options,
    )


@pytest.fixture(scope="module")
def contract() -> LayersContract:
    return _contract(LayersContract, "layers")


@pytest.fixture(scope="module")
def audit_contract() -> ForbiddenContract:
    configuration.configure()  # the forbidden contract times its searches with lint's clock
    return _contract(ForbiddenContract, "forbidden")


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


def test_the_audit_imports_nothing_of_the_pipeline_s_core(
    audit_contract: ForbiddenContract, graph: grimp.ImportGraph
) -> None:
    """Its own accounting and REST reader: a shared one would hide its own faults."""
    check = audit_contract.check(graph, verbose=False)
    assert check.kept, check.metadata


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("sources.audit.rest_rows", "sources.kraken.rows"),  # the pipeline's REST row parser
        ("sources.audit.ledger", "sources.kraken.lane_sequence"),  # its trade_id sequence
        ("sources.audit.pairs", "sources.kraken.config"),  # its pairs parser, directly
        ("sources.audit.accounting", "sources.steps.dedupe"),  # a dataframe step
        ("sources.audit.settings", "sources.app.settings"),  # the core, through the app
    ],
)
def test_an_import_of_the_core_by_the_audit_breaks_its_contract(
    audit_contract: ForbiddenContract, graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="x")
    assert not audit_contract.check(graph, verbose=False).kept
