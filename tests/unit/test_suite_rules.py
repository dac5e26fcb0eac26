"""The test suite's own rules: what tests share lives in one place (tests/conftest.py, a tier's
conftest.py, tests/support/), and the unit tier starts no process and opens no socket.

- No module of tests/ imports a test module or a conftest (a helper two tests need moves to
  tests/support/, a fixture to a conftest).
- No fixture name is defined in two test modules, nor in a test module as well as in a shared
  place (a configurable fixture takes a marker: see `market` in tests/conftest.py).
- No helper (a top-level function or class) is defined twice with the same code in tests/.

The rules read the sources with `ast` (nothing is imported), and are shown to catch what they
forbid on a small tree written for the purpose.
"""

from __future__ import annotations

import ast
import multiprocessing
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import pytest

from simulator import Market
from tests.support.isolation import UnitTierViolation
from tests.support.repo import ROOT


@dataclass(frozen=True)
class Module:
    """A Python file below a `tests` folder, parsed."""

    path: Path
    tests: Path  # the `tests` folder

    @property
    def where(self) -> str:
        return self.path.relative_to(self.tests.parent).as_posix()

    @property
    def name(self) -> str:
        parts = self.path.relative_to(self.tests.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    @property
    def is_test_module(self) -> bool:
        """A module pytest collects tests from (its default `test_*.py` and `*_test.py`)."""
        return self.path.name.startswith("test_") or self.path.stem.endswith("_test")

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))


@cache
def modules(tests: Path) -> tuple[Module, ...]:
    """Every Python file below `tests`, each parsed once however many rules read it."""
    return tuple(Module(path, tests) for path in sorted(tests.rglob("*.py")))


def imports(module: Module) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of each module an import statement may load: for `from a import b`,
    both `a` and `a.b` (b may be a module)."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` folders up
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def imports_of_test_modules(tests: Path) -> list[str]:
    """Each import, in any module of `tests`, of a test module or a conftest."""
    found = modules(tests)
    forbidden = {m.name: m for m in found if m.is_test_module or m.path.name == "conftest.py"}
    return [
        f"{module.where}:{line} imports {name} ({forbidden[name].where})"
        for module in found
        for line, name in imports(module)
        if name in forbidden and name != module.name
    ]


def fixture_name(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The name a function declares a fixture under, None if it is not a fixture."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        if ast.unparse(target) in ("pytest.fixture", "fixture"):
            named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
            if named and isinstance(named[0], ast.Constant):
                return str(named[0].value)
            return node.name
    return None


def fixtures(module: Module) -> Iterator[tuple[int, str]]:
    """(line, name) of each fixture the module defines, at its top level or in a class."""
    bodies = [module.tree.body] + [n.body for n in module.tree.body if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = fixture_name(node)
                if name is not None:
                    yield node.lineno, name


def fixtures_defined_twice(tests: Path) -> list[str]:
    """Each fixture name a test module defines that another test module or a shared place
    defines too (shared places may override one another: a tier's conftest the root's)."""
    where: dict[str, list[tuple[Module, int]]] = defaultdict(list)
    for module in modules(tests):
        for line, name in fixtures(module):
            where[name].append((module, line))
    return [
        f"fixture {name!r} defined in " + ", ".join(f"{m.where}:{line}" for m, line in places)
        for name, places in sorted(where.items())
        if len(places) > 1 and any(m.is_test_module for m, _ in places)
    ]


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def code_of(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """A definition's code, without its name and docstring: equal for a copy renamed."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    head = node.bases if isinstance(node, ast.ClassDef) else [node.args]
    parts = [type(node).__name__, *node.decorator_list, *head, *body]
    return "\n".join(p if isinstance(p, str) else ast.dump(p) for p in parts)


def is_test(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    """A test function or class, as pytest collects them (tests are not helpers)."""
    return node.name.startswith("Test" if isinstance(node, ast.ClassDef) else "test")


def helpers_defined_twice(tests: Path) -> list[str]:
    """Each top-level function or class of `tests` whose code another one repeats."""
    where: dict[str, list[str]] = defaultdict(list)
    for module in modules(tests):
        for node in module.tree.body:
            if isinstance(node, DEFINITIONS) and not is_test(node):
                where[code_of(node)].append(f"{module.where}:{node.lineno} {node.name}")
    return ["the same code in " + ", ".join(places) for places in where.values() if len(places) > 1]


# --- the rules hold in this suite ------------------------------------------------------------


def test_no_test_module_imports_another() -> None:
    assert imports_of_test_modules(ROOT / "tests") == []


def test_no_fixture_is_defined_twice() -> None:
    assert fixtures_defined_twice(ROOT / "tests") == []


def test_no_helper_is_defined_twice() -> None:
    assert helpers_defined_twice(ROOT / "tests") == []


# --- the rules catch what they forbid ---------------------------------------------------------

VIOLATIONS = {
    "tests/__init__.py": "",
    "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef broker():\n    return 'b'\n",
    "tests/support/__init__.py": "",
    "tests/support/files.py": "def load(path):\n    return path.read_text()\n",
    "tests/unit/__init__.py": "",
    "tests/unit/test_a.py": (
        "import pytest\n\n"
        "@pytest.fixture\ndef market():\n    return 1\n\n"
        "def read(path):\n    '''A copy of support's `load`.'''\n    return path.read_text()\n"
    ),
    "tests/e2e/__init__.py": "",
    "tests/e2e/test_b.py": (
        "import pytest\n"
        "from tests.unit.test_a import read\n"
        "from tests.support.files import load\n"
        "from ..unit import test_a\n"
        "from tests import conftest\n\n"
        "@pytest.fixture(name='market')\ndef other_market():\n    return 2\n\n"
        "@pytest.fixture(scope='session')\ndef broker():\n    return 'c'\n"
    ),
}


@pytest.fixture
def violating_tree(tmp_path: Path) -> Path:
    """A tests folder breaking each rule once or more, next to what they allow."""
    for name, text in VIOLATIONS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "tests"


def test_an_import_of_a_test_module_or_a_conftest_is_caught(violating_tree: Path) -> None:
    assert imports_of_test_modules(violating_tree) == [
        "tests/e2e/test_b.py:2 imports tests.unit.test_a (tests/unit/test_a.py)",
        "tests/e2e/test_b.py:4 imports tests.unit.test_a (tests/unit/test_a.py)",
        "tests/e2e/test_b.py:5 imports tests.conftest (tests/conftest.py)",
    ]


def test_a_fixture_defined_twice_is_caught_under_any_name(violating_tree: Path) -> None:
    assert fixtures_defined_twice(violating_tree) == [
        "fixture 'broker' defined in tests/conftest.py:4, tests/e2e/test_b.py:12",
        "fixture 'market' defined in tests/e2e/test_b.py:8, tests/unit/test_a.py:4",
    ]


def test_a_helper_copied_under_another_name_is_caught(violating_tree: Path) -> None:
    assert helpers_defined_twice(violating_tree) == [
        "the same code in tests/support/files.py:1 load, tests/unit/test_a.py:7 read"
    ]


# --- the shared `market` fixture is the one its marker describes (tests/conftest.py) ---------

PAIRS = ["BTC/USD", "ETH/USD"]


@pytest.mark.market(PAIRS, seed=7, seed_history={"count_per_pair": 5, "span_seconds": 10})
def test_the_market_fixture_is_the_market_its_marker_describes(market: Market) -> None:
    same = Market(PAIRS, seed=7)
    same.seed_history(count_per_pair=5, span_seconds=10)
    other = Market(PAIRS, seed=8)
    other.seed_history(count_per_pair=5, span_seconds=10)

    def shape(m: Market) -> list[tuple[object, ...]]:
        return [
            (t.symbol, t.trade_id, t.price, t.qty, t.side) for p in m.pairs for t in m.history(p)
        ]

    assert market.pairs == tuple(PAIRS)
    assert [len(market.history(p)) for p in PAIRS] == [5, 5]
    assert shape(market) == shape(same) != shape(other)


# --- the unit tier starts no process and opens no socket (tests/unit/conftest.py) -------------


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(UnitTierViolation, match="move this test to tests/component"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    process = multiprocessing.get_context("spawn").Process(target=print)
    with pytest.raises(UnitTierViolation, match="starts a process"):
        process.start()


def test_a_unit_test_cannot_use_a_socket() -> None:
    with socket.socket() as unused, pytest.raises(UnitTierViolation, match="uses a socket"):
        unused.bind(("127.0.0.1", 0))
    with socket.socket() as unused, pytest.raises(UnitTierViolation, match="uses a socket"):
        unused.connect(("127.0.0.1", 9))
