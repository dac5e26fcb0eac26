"""A stand-in for the state Quix Streams hands a stateful step."""

from __future__ import annotations

from typing import Any


class DictState:
    """The part of Quix Streams' `State` the steps use."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
