"""`--verify-rest`: each audited pair's window, page by page from Kraken's REST `Trades`,
against the topic's records read again (one pair at a time, from its partition).

Memory stays that of a page: the topic's records of a pair are read along with the pages
(`PairVerifier` holds those not yet matched), never all at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .accounting import PairAudit
from .reader import TopicReader
from .rest_client import PAGE, KrakenRest, RestUnavailable
from .rest_rows import KrakenError
from .verify import PairVerifier, TimePager

__all__ = ["PairVerification", "estimated_calls", "verify_pairs"]

logger = logging.getLogger(__name__)

MS = 1_000_000  # ns


@dataclass
class PairVerification:
    """What `--verify-rest` found for one pair (`error`: why it could not finish)."""

    verifier: PairVerifier | None
    calls: int = 0
    error: str | None = None
    jumps: int = 0
    notes: list[str] = field(default_factory=list)


def estimated_calls(audits: Iterable[PairAudit]) -> int:
    """REST calls the verification of these pairs needs, about (for the ETA)."""
    return 1 + sum(
        (a.ledger.high - a.ledger.low) // PAGE + 2 for a in audits if a.ledger is not None
    )


def verify_pairs(
    audits: list[PairAudit],
    rest: KrakenRest,
    reader: TopicReader,
    topic: str,
    *,
    since_ms: int | None,
    until_ms: int | None,
    max_findings: int = 1000,
    progress: Callable[[int, int | None], None] = lambda done, total: None,
) -> dict[str, PairVerification]:
    """Verify each pair in turn; after Kraken's REST API stays away, the rest are skipped."""
    total = estimated_calls(audits)
    results: dict[str, PairVerification] = {}
    unavailable: str | None = None
    for audit in audits:
        if audit.ledger is None:
            continue
        if unavailable:
            results[audit.pair] = PairVerification(None, error=unavailable)
            continue
        calls_before = rest.calls
        try:
            results[audit.pair] = _verify(
                audit,
                rest,
                reader,
                topic,
                since_ms,
                until_ms,
                max_findings,
                lambda: progress(rest.calls, total),
            )
        except RestUnavailable as exc:
            unavailable = f"Kraken's REST API did not answer: {exc}"
            results[audit.pair] = PairVerification(None, error=unavailable)
        except KrakenError as exc:
            results[audit.pair] = PairVerification(None, error=f"Kraken's REST API: {exc}")
        results[audit.pair].calls = rest.calls - calls_before
        progress(rest.calls, total)
    return results


def _verify(
    audit: PairAudit,
    rest: KrakenRest,
    reader: TopicReader,
    topic: str,
    since_ms: int | None,
    until_ms: int | None,
    max_findings: int,
    tick: Callable[[], None],
) -> PairVerification:
    ledger = audit.ledger
    assert ledger is not None
    name = rest.rest_name(audit.pair)
    if name is None:
        return PairVerification(None, error=f"Kraken's AssetPairs does not list {audit.pair}")
    start_ns = (since_ms if since_ms is not None else ledger.low_ms) * MS
    end_ns = (until_ms if until_ms is not None else ledger.high_ms) * MS + MS - 1
    verifier = PairVerifier(
        audit.pair,
        ledger.low,
        ledger.high,
        ledger.holes(),
        since_ns=None if since_ms is None else start_ns,
        until_ns=None if until_ms is None else end_ns,
        max_findings=max_findings,
    )
    records = _pair_records(audit, reader, topic, since_ms, until_ms)
    pager = TimePager(start_ns, end_ns)
    exhausted = False
    while not pager.done:
        trades = pager.take(rest.trades(name, pager.since))
        tick()
        if not trades:
            continue
        wanted = trades[-1].trade_id
        while not exhausted and verifier.topic_high < wanted:
            record = next(records, None)
            if record is None:
                exhausted = True
            else:
                verifier.add_topic(record)
        verifier.check(trades)
    for record in records:  # beyond what Kraken served: listed as not served
        verifier.add_topic(record)
        verifier.finish()
    verifier.finish()
    result = PairVerification(verifier, jumps=pager.jumps)
    if pager.jumps:
        result.notes.append(
            f"{pager.jumps} time(s) a whole REST page shared one instant: paged on by "
            "Kraken's cursor, trades of that instant beyond the page may be unverified"
        )
    return result


def _pair_records(
    audit: PairAudit,
    reader: TopicReader,
    topic: str,
    since_ms: int | None,
    until_ms: int | None,
) -> Iterator[dict]:
    """The pair's records in the window, read again from its home partition."""
    low = -(2**63) if since_ms is None else since_ms
    high = 2**63 if until_ms is None else until_ms
    for record in reader.records(topic, audit.partition, audit.first_offset, audit.last_offset):
        if record.get("pair") != audit.pair or type(record.get("trade_id")) is not int:
            continue
        millis = record.get("timestamp_ms")
        if type(millis) is int and not low <= millis <= high:
            continue
        yield record
