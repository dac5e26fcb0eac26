"""Splitting pairs between shards across processes: every process splits alike (tests/unit/
test_shards.py has the rest, in one process)."""

from __future__ import annotations

import subprocess
import sys

from sources.app.shards import shard_of


def test_the_split_is_the_same_in_every_process() -> None:
    """crc32, not Python's per-process salted hash()."""
    pairs = [f"C{i}/USD" for i in range(40)]
    code = f"from sources.app.shards import shard_of;print([shard_of(p, 3) for p in {pairs!r}])"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs == {f"{[shard_of(p, 3) for p in pairs]}\n"}
