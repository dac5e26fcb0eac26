"""The output schemas (`schemas/*.json`): validate real records against them, render the
documentation's field tables from them (docs/output.md, docs/extending.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.repo import ROOT

SCHEMAS = ROOT / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """`schemas/<name>.json`, e.g. `trade.v1`."""
    return json.loads((SCHEMAS / f"{name}.json").read_text())


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(values: Iterable[dict[str, Any]], name: str, *, only_schema_fields=True) -> int:
    """Every value validates against `schemas/<name>.json`; returns how many were checked.

    :param only_schema_fields: also require that no value has a field the schema does not
        name (the pipeline's own output; a schema open to additions allows more).
    """
    check = validator(name)
    known = set(load_schema(name)["properties"])
    count = 0
    for value in values:
        errors = sorted(check.iter_errors(value), key=lambda e: list(e.path))
        assert not errors, f"{name}: {value!r}: " + "; ".join(e.message for e in errors[:3])
        if only_schema_fields:
            assert set(value) <= known, f"{name}: fields not in the schema: {set(value) - known}"
        count += 1
    assert count, f"no record to validate against {name}"
    return count


def render_type(prop: dict[str, Any]) -> str:
    """The field table's `type` cell of a schema property."""
    if "enum" in prop:
        return "/".join(f"`{v}`" if isinstance(v, str) else json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(render_type(p) for p in prop["anyOf"])
    kind = prop["type"]
    return " or ".join(kind) if isinstance(kind, list) else kind


def readme_table(name: str) -> str:
    """The markdown table of `schemas/<name>.json`: field, type, meaning (its description)."""
    schema = load_schema(name)
    lines = ["| field | type | meaning |", "|---|---|---|"]
    for field, prop in schema["properties"].items():
        lines.append(f"| `{field}` | {render_type(prop)} | {prop['description']} |")
    return "\n".join(lines)
