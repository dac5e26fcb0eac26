"""The README and docs/: short README, every page reachable, links that resolve, and
troubleshooting entries that quote log lines the code really writes."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import quixstreams

from tests.support.repo import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FIRST_SCREEN_END = "<!-- end of the first screen -->"
MAX_README_LINES = 250
MAX_FIRST_SCREEN_LINES = 80
# Quoted in docs/troubleshooting.md but written by other programs, not by Python code here.
WRITTEN_ELSEWHERE = {
    "ApiVersionRequest failed: Local: Read underflow": "kcat's librdkafka",
}


def _without_code_blocks(text: str) -> str:
    return re.sub(r"(?ms)^```.*?^```", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"(?m)^#{1,6} (.+)$", _without_code_blocks(path.read_text())):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", _without_code_blocks(path.read_text()))


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):
            continue  # https://, mailto:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no {path.relative_to(ROOT) if ROOT in path.parents else path}")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link}: no heading #{anchor} in {path.name}")
    assert not broken, broken


def test_the_readme_is_short_and_its_first_screen_has_the_essentials() -> None:
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) < MAX_README_LINES
    assert FIRST_SCREEN_END in text
    first = text.split(FIRST_SCREEN_END)[0]
    assert len(first.splitlines()) <= MAX_FIRST_SCREEN_LINES
    assert "──▶" in first  # the diagram of the flow
    for command in ("make run", "make test", "make tail", "quix run --update --deployment trades"):
        assert f"\n{command}" in first or f"&& {command}" in first, command
    assert "docs/delivery-guarantees.md" in first


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(README)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


@cache
def _written_lines() -> tuple[str, ...]:
    """Every string literal of our code and Quix Streams', placeholders (`{x}`, `%s`) as `…`."""
    roots = [ROOT / "sources", ROOT / "pipelines", Path(quixstreams.__file__).parent]
    texts = []
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.JoinedStr):
                    parts = [v.value if isinstance(v, ast.Constant) else "…" for v in node.values]
                    texts.append("".join(parts))
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    texts.append(re.sub(r"%[-#0-9.]*[sdrfg]", "…", node.value))
    return tuple(texts)


def _quoted_lines() -> list[str]:
    """The first code span of the first cell of each row of docs/troubleshooting.md's tables."""
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    rows = re.findall(r"(?m)^\| (?!you see|---)(.+?) \|", text)
    return [span.group(1) for row in rows if (span := re.search(r"`([^`]+)`", row))]


def test_troubleshooting_quotes_log_lines_the_code_writes() -> None:
    quoted = _quoted_lines()
    assert len(quoted) >= 30
    unknown = []
    for line in quoted:
        if line in WRITTEN_ELSEWHERE:
            continue
        pattern = ".*?".join(re.escape(piece) for piece in line.split("…"))
        if not any(re.search(pattern, text) for text in _written_lines()):
            unknown.append(line)
    assert not unknown, f"no code writes these (reworded? update the page): {unknown}"
