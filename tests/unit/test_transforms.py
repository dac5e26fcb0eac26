"""User transforms (`transforms`): the working directory goes on `sys.path` only when there is
something to import, so without transforms a module there never shadows one the pipeline
imports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sources.app.settings import ConfigError
from sources.app.transforms import load_transforms


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return tmp_path


def test_without_transforms_the_working_directory_stays_off_the_path(workdir: Path) -> None:
    before = list(sys.path)
    assert load_transforms("") == [] and load_transforms(" , ") == []
    assert sys.path == before


def test_with_transforms_the_working_directory_comes_first(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "my_steps_21.py").write_text("def keep(sdf):\n    return sdf\n")
    monkeypatch.delitem(sys.modules, "my_steps_21", raising=False)
    [keep] = load_transforms("my_steps_21:keep")
    assert keep.__name__ == "keep" and sys.path[0] == str(workdir)
    with pytest.raises(ConfigError, match="transforms: 'my_steps_21' has no function 'other'"):
        load_transforms("my_steps_21:other")
