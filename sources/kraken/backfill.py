"""Fetching missed trades from Kraken's REST API in a background thread.

The source's I/O loop stays on the WebSocket; `BackfillWorker` pages through `Trades`
for one job at a time and hands the pages back through a queue, in order, so the loop
publishes them between frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from .rest import KrakenRest, RestError, Stopped, TradesPage

__all__ = ["BackfillDone", "BackfillJob", "BackfillPage", "BackfillWorker"]

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
PROGRESS_EVERY = 10.0  # seconds between two progress lines of one job


@dataclass(slots=True)
class BackfillJob:
    """Fetch the trades of `pair` after `since_ns`, up to trade `until_id` or until now.

    :param reason: for the log, e.g. "gap 4..9" or "backfill_since 2024-01-01T00:00:00Z".
    """

    pair: str
    since_ns: int
    until_id: int | None
    reason: str
    fetched: int = 0
    started: float = field(default_factory=time.monotonic)
    last_progress: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def stalled_for(self) -> float:
        """Seconds since the job last delivered a page."""
        return time.monotonic() - self.last_progress


@dataclass(frozen=True, slots=True)
class BackfillPage:
    """Some trades of a job, in trade_id order."""

    job: BackfillJob
    page: TradesPage


@dataclass(frozen=True, slots=True)
class BackfillDone:
    """The job is over: `complete` is False when Kraken could not serve all of it."""

    job: BackfillJob
    complete: bool
    error: str | None = None


class BackfillWorker(threading.Thread):
    """Runs `BackfillJob`s one after the other; results arrive on `results`.

    :param rest: the REST client (its rate limit spaces the calls).
    :param results: where pages and completions go.
    """

    def __init__(self, rest: KrakenRest, results: queue.Queue[BackfillPage | BackfillDone]) -> None:
        super().__init__(name="kraken-backfill", daemon=True)
        self.rest = rest
        self.results = results
        self.jobs: queue.Queue[BackfillJob] = queue.Queue()
        self._stopping = threading.Event()
        self._current: BackfillJob | None = None
        rest.should_continue = self._should_continue

    def submit(self, job: BackfillJob) -> None:
        logger.info("Backfill of %s queued (%s)", job.pair, job.reason)
        self.jobs.put(job)

    def stop(self) -> None:
        self._stopping.set()

    def _should_continue(self) -> bool:
        current = self._current
        return not self._stopping.is_set() and not (current and current.cancelled)

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    job = self.jobs.get(timeout=0.2)
                except queue.Empty:
                    continue
                if job.cancelled:
                    continue
                self._current = job
                try:
                    self.results.put(self._run_job(job))
                except Stopped:
                    if self._stopping.is_set():
                        return
                    logger.warning("Backfill of %s abandoned (%s)", job.pair, job.reason)
                finally:
                    self._current = None
        finally:
            self.rest.close()

    def _run_job(self, job: BackfillJob) -> BackfillDone:
        since = job.since_ns
        next_progress = time.monotonic() + PROGRESS_EVERY
        while True:
            try:
                page = self.rest.trades(job.pair, since, PAGE_SIZE)
            except RestError as exc:
                logger.error("Backfill of %s failed: %s", job.pair, exc)
                return BackfillDone(job, complete=False, error=str(exc))
            job.fetched += len(page.trades)
            job.last_progress = time.monotonic()
            if page.trades:
                self.results.put(BackfillPage(job, page))
            if time.monotonic() >= next_progress:
                next_progress = time.monotonic() + PROGRESS_EVERY
                self._log_progress(job, page)
            if (
                job.until_id is not None
                and page.trades
                and page.trades[-1].trade_id >= job.until_id
            ):
                return BackfillDone(job, complete=True)
            if len(page.trades) < PAGE_SIZE or page.last_ns <= since:
                # caught up with now: what is still missing, Kraken does not have
                return BackfillDone(job, complete=job.until_id is None)
            since = page.last_ns

    @staticmethod
    def _log_progress(job: BackfillJob, page: TradesPage) -> None:
        elapsed = max(time.monotonic() - job.started, 1e-9)
        behind = time.time() - page.trades[-1].timestamp_ms / 1000 if page.trades else 0.0
        logger.info(
            "Backfill %s: %d trades fetched, %s behind now, %.0f trades/s (%s)",
            job.pair,
            job.fetched,
            _duration(behind),
            job.fetched / elapsed,
            job.reason,
        )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
