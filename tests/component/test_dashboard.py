"""deploy/grafana's dashboard queries, parsed by promtool (a process: the component tier)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from tests.support.grafana import filled_panel_queries
from tests.support.prometheus import promtool


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query, as a recording rule, with Grafana's variables filled in."""
    queries = filled_panel_queries()
    assert not [q for q in queries if "$" in q], "a query uses a variable this test cannot fill"
    document = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    check = tmp_path / "dashboard_queries.yml"
    with check.open("w", encoding="utf-8") as out:
        YAML(typ="safe", pure=True).dump(document, out)
    result = promtool("check", "rules", check, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout
