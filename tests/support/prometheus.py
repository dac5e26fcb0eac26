"""Prometheus' own binaries for the tests (Debian's `prometheus` package; `.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil

import pytest


def find_binary(name: str, variable: str) -> str:
    """`name` from `$variable` or the PATH, else a failure (not a skip) saying how to get it."""
    found = os.environ.get(variable) or shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found: install Prometheus (Debian/Ubuntu: apt-get install prometheus; "
            f"macOS: brew install prometheus) or set {variable} to its path"
        )
    return found
