"""`python -m simulator`: serve a simulated Kraken until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading

from .market import Market, generated_pairs
from .rest import KRAKEN_ERRORS
from .server import KrakenSimulator

logger = logging.getLogger("simulator")


def main() -> None:
    """Parse the command line, start the simulator and serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="Kraken WebSocket v2 + REST simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pairs", default="BTC/USD,ETH/USD")
    parser.add_argument(
        "--generated", type=int, default=0, help="also list N made-up pairs C000/USD, C001/USD..."
    )
    parser.add_argument("--rate", type=float, default=5.0, help="trades/s; 0 pauses")
    parser.add_argument("--flood", action="store_true", help="as fast as possible")
    parser.add_argument("--batch", type=int, default=1, help="most trades per frame")
    parser.add_argument("--history", type=int, default=0, help="past trades per pair")
    parser.add_argument("--history-span", type=float, default=3600, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fills", type=int, default=1, help="trades sharing one time per order")
    faults = parser.add_argument_group("REST faults, from the start")
    faults.add_argument("--rest-lag", type=float, default=0, help="seconds REST lags the socket")
    faults.add_argument(
        "--rest-errors", type=int, default=0, help="the first N Trades calls answer Kraken errors"
    )
    faults.add_argument("--rest-down", type=float, default=0, help="seconds of HTTP 503")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    market = Market([*pairs, *generated_pairs(args.generated)], seed=args.seed, fills=args.fills)
    if args.history:
        market.seed_history(args.history, args.history_span)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rate = None if args.flood else args.rate
    with KrakenSimulator(
        market, host=args.host, port=args.port, rate=rate, batch=args.batch
    ) as sim:
        if args.rest_errors:  # each documented error in turn, but an unknown pair's
            errors = [e for e in KRAKEN_ERRORS if not e.startswith("EQuery:")]
            sim.rest_errors(errors, args.rest_errors)
        if args.rest_down:
            sim.rest_down(args.rest_down)
        sim.rest_lag(args.rest_lag)
        logger.info(
            "WebSocket %s  REST %s  pairs %s%s",
            sim.ws_url,
            sim.rest_url,
            args.pairs,
            f" and {args.generated} generated" if args.generated else "",
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
