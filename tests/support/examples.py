"""How many examples a property test tries: the full count in `make test` (CI), a quarter of
it in the quick tiers developers run while they work (`make test-unit`, `make test-fast`).

Hypothesis profiles (registered in `tests/conftest.py`): `thorough` is the default, 100
examples a property as Hypothesis' own default; `quick` (`--hypothesis-profile=quick`) tries
25. Neither has a deadline. A test that asks for its own count writes
`@settings(max_examples=examples(80))` so that both profiles scale it alike.
"""

from __future__ import annotations

from hypothesis import settings

__all__ = ["QUICK", "THOROUGH", "examples", "register_profiles"]

THOROUGH = 100  # examples a property in `make test`
QUICK = 25  # examples a property in the quick tiers
FEWEST = 10


def register_profiles() -> None:
    """Register `thorough` (loaded unless `--hypothesis-profile` says otherwise) and `quick`."""
    # no deadline: a shared 2-core machine running three workers makes any example slow now
    # and then, and a deadline failure there says nothing about the code
    settings.register_profile("thorough", max_examples=THOROUGH, deadline=None)
    settings.register_profile("quick", max_examples=QUICK, deadline=None)
    settings.load_profile("thorough")


def examples(thorough: int) -> int:
    """`thorough` examples in the thorough profile, as many in proportion in the others."""
    return max(FEWEST, thorough * settings().max_examples // THOROUGH)
