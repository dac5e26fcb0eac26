"""The I/O side of REST history: one `Trades` page at a time, on a thread of its own.

The source's core decides which pair gets the next page (fairness, priority); it hands a
`PageRequest` to `PageFetcher` and later collects a `PageResult`, without ever blocking on
the network. The fetcher owns the `KrakenRest` client (its rate limit spaces the calls) and
never lets an exception end its thread: whatever goes wrong becomes a `PageResult` with
`error` set, and says whether it may pass (the core waits and asks again) or cannot
(`RestFailure.UNKNOWN_PAIR`, `RestFailure.NOT_KRAKEN`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from .actions import RestFailure
from .rest import KrakenRest, NotKraken, RestError, Stopped, UnknownPair
from .rows import BadRow, Rows
from .text import printable
from .trade import Trade

__all__ = ["PageFetcher", "PageRequest", "PageResult"]

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 0.9  # seconds `stop` waits for the thread


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Fetch one `Trades` page.

    :param request_id: the caller's id, echoed in the result.
    :param pair: Kraken v2 symbol, e.g. `BTC/USD`.
    :param since_ns: Kraken's `since` cursor (ns): the page holds trades after it.
    :param count: most rows in the page (Kraken serves up to 1000).
    """

    request_id: int
    pair: str
    since_ns: int
    count: int = 1000


@dataclass(frozen=True, slots=True)
class PageResult(Rows):
    """What came of a `PageRequest`.

    :param rows: every row Kraken served, in its order: a `Trade` per readable row, a
        `BadRow` per unreadable one (logged already).
    :param last_ns: the `last` cursor (the request's `since_ns` on error).
    :param error: None when the page arrived; else what Kraken (or the way to it) said,
        escaped and bounded (`text.printable`): the core quotes it in its log lines.
    :param failure: what the error means: it may pass, or it cannot (see `RestFailure`).
    """

    request_id: int
    pair: str
    rows: tuple[Trade | BadRow, ...]
    last_ns: int
    error: str | None = None
    failure: RestFailure = RestFailure.PASSING

    @property
    def ok(self) -> bool:
        """The page arrived (possibly with bad rows)."""
        return self.error is None


class PageFetcher:
    """Runs `PageRequest`s one at a time on a daemon thread.

    Not thread-safe for several callers: one owner submits, polls `results` and cancels.
    Counters: `pages_ok`, `pages_failed`, `rows_bad` (the client has per-call counters).

    :param rest: the client; the fetcher takes it over (its `should_continue` is replaced,
        and `stop` closes it).
    """

    def __init__(self, rest: KrakenRest) -> None:
        self.rest = rest
        self.pages_ok = 0
        self.pages_failed = 0
        self.rows_bad = 0
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the thread waits for a request
        self._done = threading.Condition(self._lock)  # the owner waits for a result
        self._pending: PageRequest | None = None  # submitted, not yet taken by the thread
        self._running: PageRequest | None = None  # being fetched
        self._abandoned = False  # the running request was cancelled
        self._stopping = False
        self._results: list[PageResult] = []
        self._last_submitted: int | None = None
        self._thread: threading.Thread | None = None
        rest.should_continue = self._should_continue

    # --- the owner's side -------------------------------------------------------------

    def start(self) -> PageFetcher:
        """Start the thread; returns self."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the page fetcher was started already")
            if self._stopping:
                raise RuntimeError("the page fetcher was stopped")
            self._thread = threading.Thread(target=self._run, name="kraken-pages", daemon=True)
        self._thread.start()
        return self

    def submit(self, request: PageRequest) -> None:
        """Fetch `request` next.

        :raises RuntimeError: a request is outstanding (see `busy`), or the fetcher is not
            running.
        """
        with self._lock:
            if self._thread is None or self._stopping:
                raise RuntimeError("the page fetcher is not running")
            if self._outstanding():
                current = self._pending or self._running
                raise RuntimeError(
                    f"page request {request.request_id} submitted while "
                    f"{current.request_id if current else '?'} is outstanding"
                )
            self._pending = request
            self._last_submitted = request.request_id
            self._work.notify()

    def busy(self) -> bool:
        """A request was submitted and its result is not ready yet."""
        with self._lock:
            return self._outstanding()

    def results(self) -> list[PageResult]:
        """What has finished since the last call (never blocks)."""
        with self._lock:
            finished, self._results = self._results, []
        return finished

    def wait(self, timeout: float) -> None:
        """Block until a result is ready or `timeout` seconds have passed."""
        with self._lock:
            if not self._results and not self._stopping:
                self._done.wait(timeout)

    def cancel(self) -> None:
        """Abandon the outstanding request: its result is dropped (even one finished but not
        yet collected), the client stops retrying promptly (an HTTP call in progress is cut
        short), and `submit` may be called at once. Waits Kraken imposed (throttling,
        `Retry-After`) still hold for the next request: they belong to the client."""
        with self._lock:
            self._pending = None
            self._results = [r for r in self._results if r.request_id != self._last_submitted]
            running = self._running is not None and not self._abandoned
            if running:
                self._abandoned = True
        if running:
            self.rest.abort()

    def stop(self) -> None:
        """Stop promptly (under a second): abandon any request, join the thread, close the
        HTTP client."""
        with self._lock:
            self._stopping = True
            self._pending = None
            thread = self._thread
            self._work.notify_all()
            self._done.notify_all()
        if thread is None:
            self.rest.close()
            return
        self.rest.abort()
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():  # e.g. resolving a host name: it closes the client when done
            logger.warning("The Kraken REST page fetcher did not stop in %.1f s", STOP_TIMEOUT)

    # --- the thread -------------------------------------------------------------------

    def _outstanding(self) -> bool:
        return self._pending is not None or (self._running is not None and not self._abandoned)

    def _should_continue(self) -> bool:
        return not self._stopping and not self._abandoned

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while self._pending is None and not self._stopping:
                        self._work.wait()
                    if self._stopping:
                        return
                    request, self._pending = self._pending, None
                    self._running, self._abandoned = request, False
                try:
                    result = self._fetch(request)
                except Exception as exc:  # a bug past the client: the thread goes on
                    logger.exception("Kraken REST page request %s failed", request)
                    result = self._failed(request, printable(f"{type(exc).__name__}: {exc}"))
                with self._lock:
                    if result is not None and not self._abandoned and not self._stopping:
                        self._results.append(result)
                        self._done.notify_all()
                    self._running, self._abandoned = None, False
        finally:
            try:
                self.rest.close()
            except Exception:
                logger.exception("Closing the Kraken REST client failed")

    def _fetch(self, request: PageRequest) -> PageResult | None:
        """The page of `request`; None when it was abandoned (the result is dropped)."""
        try:
            page = self.rest.trades(request.pair, request.since_ns, request.count)
        except Stopped:
            if self._abandoned or self._stopping:
                return None
            return self._failed(request, "the REST client was stopped")
        except RestError as exc:
            if self._abandoned or self._stopping:
                return None
            failure = (
                RestFailure.NOT_KRAKEN
                if isinstance(exc, NotKraken)
                else RestFailure.UNKNOWN_PAIR
                if isinstance(exc, UnknownPair)
                else RestFailure.PASSING
            )
            # a passing failure is the core's to report (it knows how long the wait is)
            logger.log(
                logging.ERROR if failure is not RestFailure.PASSING else logging.DEBUG,
                "Kraken REST page of %s since %d failed: %s",
                request.pair,
                request.since_ns,
                exc,
            )
            return self._failed(request, str(exc), failure)
        except Exception as exc:
            logger.exception(
                "Kraken REST page of %s since %d: unexpected error", request.pair, request.since_ns
            )
            return self._failed(request, printable(f"{type(exc).__name__}: {exc}"))
        for bad in page.bad_rows:
            logger.warning(
                "Kraken REST %s served an unreadable trade row, trade_id %s: %s; row %s",
                request.pair,
                bad.trade_id if bad.trade_id is not None else "unknown",
                bad.reason,
                bad.excerpt,
            )
        self.rows_bad += len(page.bad_rows)
        self.pages_ok += 1
        return PageResult(request.request_id, request.pair, page.rows, page.last_ns)

    def _failed(
        self, request: PageRequest, error: str, failure: RestFailure = RestFailure.PASSING
    ) -> PageResult:
        self.pages_failed += 1
        return PageResult(request.request_id, request.pair, (), request.since_ns, error, failure)
