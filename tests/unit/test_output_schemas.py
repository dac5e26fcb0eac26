"""The versioned output schemas (`schemas/`): valid, and the documentation's tables are theirs."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from tests.support.schemas import ROOT, SCHEMAS, load_schema, readme_table

NAMES = ("trade.v1", "gap.v1", "candle.v1")


def readme_tables() -> dict[str, str]:
    """`<!-- schema: NAME -->` markers in the README and docs/, each followed by its table."""
    readme = "\n".join(p.read_text() for p in (ROOT / "README.md", *(ROOT / "docs").glob("*.md")))
    tables = {}
    for match in re.finditer(r"<!-- schema: (\S+) -->\n((?:\|.*\n)+)", readme):
        tables[match.group(1)] = match.group(2).rstrip("\n")
    return tables


def test_every_schema_file_is_a_valid_draft_2020_12_schema_with_its_id() -> None:
    assert sorted(p.stem for p in SCHEMAS.glob("*.json")) == sorted(NAMES)
    for name in NAMES:
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"urn:kraken-trades:schema:{name}"
        assert set(schema["required"]) == set(schema["properties"]), name
        for field, prop in schema["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_table_is_generated_from_the_schema(name: str) -> None:
    tables = readme_tables()
    assert name in tables, f"no `<!-- schema: {name} -->` table in the README or docs/"
    expected = readme_table(name)
    assert tables[name] == expected, f"the {name} table should read:\n{expected}"


def test_the_trade_schema_admits_the_transforms_fields_the_others_do_not() -> None:
    assert load_schema("trade.v1")["additionalProperties"] is True
    assert load_schema("gap.v1")["additionalProperties"] is False
    assert load_schema("candle.v1")["additionalProperties"] is False


def test_the_gap_reasons_are_the_schema_s() -> None:
    from sources.kraken.gaps import GAP_REASONS

    assert load_schema("gap.v1")["properties"]["reason"]["enum"] == list(GAP_REASONS)


def test_the_documented_examples_validate() -> None:
    output = (ROOT / "docs" / "output.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", output, re.S)]
    trade, gap = blocks
    Draft202012Validator(load_schema("trade.v1")).validate(trade)
    Draft202012Validator(load_schema("gap.v1")).validate(gap)
    candles = (ROOT / "docs" / "extending.md").read_text()
    candle = json.loads(re.search(r"```json\n(.*?)```", candles, re.S).group(1))  # type: ignore[union-attr]
    Draft202012Validator(load_schema("candle.v1")).validate(candle)
