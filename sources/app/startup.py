"""What an entry script does first, before the heavy imports."""

from __future__ import annotations

import contextlib
import warnings

__all__ = ["quiet_third_party_warnings"]


def quiet_third_party_warnings() -> None:
    """Silence warnings third-party imports print at every start and no user can act on.

    Quix Streams imports authlib, which warns that httpx is deprecated and forces its own
    warnings to show at import; so the filter goes in after that import.
    """
    with contextlib.suppress(ImportError):
        import authlib.deprecate  # noqa: F401
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
