"""A Kraken v2 simulator: WebSocket trade feed and public REST API, on loopback.

Used by the tests, the offline demo and the benchmark; also a CLI: `python -m simulator`.
"""

from .market import Market, SimTrade
from .server import KrakenSimulator

__all__ = ["KrakenSimulator", "Market", "SimTrade"]
