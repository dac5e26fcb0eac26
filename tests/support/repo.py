"""The repository's own files as the tests read them: where the checkout is, and its YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def load_yaml(path: Path) -> Any:
    """A YAML file of the repository, read as plain data (ruamel's safe, pure-Python loader)."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
