"""User transforms: dataframe steps named in the `transforms` variable, loaded at start.

`transforms=my_steps:add_notional,my_steps:big_trades` imports `my_steps` (from the
working directory or anywhere on `PYTHONPATH`) and applies `add_notional(sdf)`, then
`big_trades(sdf)`: each takes the StreamingDataFrame of output records and returns it
extended, e.g. `return sdf.apply(lambda r: {**r, "notional": r["price"] * r["volume"]})`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from quixstreams.dataframe import StreamingDataFrame

from .settings import ConfigError

__all__ = ["Transform", "apply_transforms", "load_transforms"]

Transform = Callable[[StreamingDataFrame], StreamingDataFrame]


def load_transforms(spec: str, *, setting: str = "transforms") -> list[Transform]:
    """Import every `module:function` of the comma-separated `spec`; fail naming the setting.

    The working directory goes on `sys.path` (first) only when there is something to import:
    without transforms, a module there never shadows one the pipeline imports later.
    """
    items = [part.strip() for part in spec.split(",") if part.strip()]
    if items and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    transforms: list[Transform] = []
    for item in items:
        module_name, _, function_name = item.partition(":")
        if not module_name or not function_name:
            raise ConfigError(f"{setting}: {item!r} is not module:function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{setting}: cannot import {module_name!r}: {exc}") from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise ConfigError(f"{setting}: {module_name!r} has no function {function_name!r}")
        transforms.append(function)
    return transforms


def apply_transforms(
    sdf: StreamingDataFrame, transforms: Sequence[Transform]
) -> StreamingDataFrame:
    """Apply each transform in order; each must return a StreamingDataFrame."""
    for transform in transforms:
        result = transform(sdf)
        if not isinstance(result, StreamingDataFrame):
            name = getattr(transform, "__qualname__", repr(transform))
            raise TypeError(f"transform {name} must return the StreamingDataFrame it extends")
        sdf = result
    return sdf
