"""The audit's report: one JSON-ready dict (what `--json` prints and the tables render), and
the exit code it implies. No I/O.

Per pair, what *fails* the audit (status `unexplained`, exit 1): holes no gap event explains,
duplicates, trade_ids out of order (or undetermined), times that disagree, keys that are not
the pair, records that do not validate, and with `--verify-rest` fields that differ from
Kraken's and trades Kraken serves at the window's explicit edges that the topic lacks. Holes
that gap events explain are `explained`: listed, and failing only with `--strict`. The rest is
information (`notes`): trades the topic holds that Kraken's REST does not serve, gap events for
trades the topic holds, the value mode.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .accounting import PairAudit, TopicAudit
from .explain import GapEvents
from .findings import Findings, Hole
from .reader import ReadStats
from .rest_verify import PairVerification
from .settings import AuditSettings

__all__ = ["build_report", "exit_code", "iso_ms"]

FAILING = (
    "unexplained_holes",
    "duplicates",
    "out_of_order",
    "undetermined",
    "time_mismatches",
    "key_mismatches",
    "invalid",
    "rest_mismatches",
    "missing_at_start",
    "missing_at_end",
)


def iso_ms(millis: int | None) -> str | None:
    """Epoch ms -> `2026-12-07T00:03:28.411Z`."""
    if millis is None:
        return None
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def build_report(
    settings: AuditSettings,
    audit: TopicAudit,
    stats: ReadStats,
    events: GapEvents,
    verifications: dict[str, PairVerification] | None = None,
    *,
    rest_usage: dict[str, int] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Everything found, per pair and in total; `summary.exit_code` says how it ends."""
    audit.settle()
    pairs = [
        _pair(a, events, (verifications or {}).get(a.pair))
        for _, a in sorted(audit.pairs.items())
        if a.records
    ]
    absent = audit.absent()
    problems = _problems(pairs, audit, events, absent)
    explained = sum(p["counts"]["explained_holes"] for p in pairs)
    verify_errors = sorted({v.error for v in (verifications or {}).values() if v.error})
    code = exit_code(problems, explained, strict=settings.strict, incomplete=bool(verify_errors))
    return {
        "topic": settings.input,
        "gaps_topic": settings.gaps_input if events.found else None,
        "window": {"since": iso_ms(settings.since_ms), "until": iso_ms(settings.until_ms)},
        "pairs_selected": str(settings.pairs),
        "read": {
            "records": stats.records,
            "seconds": round(stats.seconds, 3),
            "records_per_second": round(stats.rate),
            "partitions": stats.partitions,
            "start": stats.start,
            "ended": stats.ended,
            "before_window": audit.before,
            "after_window": audit.after,
            "other_pairs": audit.other_pairs,
            "gap_events": events.read,
        },
        "pairs": pairs,
        "absent_pairs": absent,
        "invalid_without_pair": _listed(audit.unpaired),
        "invalid_gap_events": _listed(events.invalid),
        "verify_rest": settings.verify_rest,
        "verify_errors": verify_errors,
        "rest_usage": rest_usage,
        "notes": notes or [],
        "summary": {
            "status": _status(problems, explained, bool(verify_errors)),
            "exit_code": code,
            "pairs": len(pairs),
            "trades": sum(p["trades"] for p in pairs),
            "problems": problems,
            "explained_holes": explained,
            "strict": settings.strict,
        },
    }


def _problems(
    pairs: list[dict[str, Any]], audit: TopicAudit, events: GapEvents, absent: list[str]
) -> dict[str, int]:
    """What fails the audit, by kind: the pairs' counts and the topic's own findings."""
    problems: dict[str, int] = {}
    for pair in pairs:
        for kind, count in pair["counts"].items():
            if kind in FAILING and count:
                problems[kind] = problems.get(kind, 0) + count
    if audit.unpaired:
        problems["invalid"] = problems.get("invalid", 0) + audit.unpaired.total
    if events.invalid:
        problems["invalid_gap_events"] = events.invalid.total
    if absent:
        problems["absent_pairs"] = len(absent)
    if not pairs:
        problems["no_trades"] = 1
    return problems


def exit_code(problems: dict[str, int], explained: int, *, strict: bool, incomplete: bool) -> int:
    """0 nothing wrong; 1 something unexplained (or, `strict`, explained holes); 2 the check
    could not be completed and found nothing wrong in what it did check."""
    if problems or (strict and explained):
        return 1
    return 2 if incomplete else 0


def _status(problems: dict[str, int], explained: int, incomplete: bool) -> str:
    if problems:
        return "unexplained"
    if incomplete:
        return "incomplete"
    return "explained" if explained else "clean"


def _pair(audit: PairAudit, events: GapEvents, verification: PairVerification | None) -> dict:
    ledger = audit.ledger
    holes = ledger.holes() if ledger is not None else []
    events.explain(audit.pair, holes)
    unexplained = [h for h in holes if not h.explained]
    explained = [h for h in holes if h.explained]
    counts = {
        "unexplained_holes": len(unexplained),
        "missing_trades": sum(h.count for h in unexplained),
        "explained_holes": len(explained),
        "explained_trades": sum(h.count for h in explained),
        "duplicates": ledger.duplicate_records if ledger else 0,
        "out_of_order": ledger.late_records if ledger else 0,
        "undetermined": ledger.undetermined_records if ledger else 0,
        "time_mismatches": audit.times.total,
        "key_mismatches": audit.keys.total,
        "invalid": audit.invalid.total,
    }
    unmatched = events.unmatched(audit.pair, ledger.low, ledger.high, holes) if ledger else []
    notes = []
    numbers = audit.records - audit.invalid.total - audit.strings
    if audit.strings and numbers:
        notes.append(f"mixed value modes: {audit.strings} decimal strings, {numbers} numbers")
    if unmatched:
        ranges = ", ".join(f"{e.first_id}..{e.last_id} ({e.reason})" for e in unmatched[:20])
        notes.append(f"gap events for trade_ids the topic holds: {ranges}")
    if audit.elsewhere:
        notes.append(f"{audit.elsewhere} records on another partition than {audit.partition}")
    report: dict[str, Any] = {
        "pair": audit.pair,
        "trades": audit.records,
        "first_trade_id": ledger.low if ledger else None,
        "last_trade_id": ledger.high if ledger else None,
        "first_time": iso_ms(ledger.low_ms) if ledger else None,
        "last_time": iso_ms(ledger.high_ms) if ledger else None,
        "value_mode": _mode(audit),
        "partition": audit.partition,
        "counts": counts,
        "holes": [_hole(h) for h in holes],
        "duplicates": _listed(ledger.duplicates) if ledger else [],
        "out_of_order": _listed(ledger.late) if ledger else [],
        "undetermined": _listed(ledger.undetermined) if ledger else [],
        "time_mismatches": _listed(audit.times),
        "key_mismatches": _listed(audit.keys),
        "invalid": _listed(audit.invalid),
        "notes": notes,
    }
    if verification is not None:
        report["rest"] = _rest(verification, counts)
    failing = any(counts[k] for k in FAILING if k in counts)
    report["status"] = "unexplained" if failing else "explained" if explained else "clean"
    return report


def _rest(verification: PairVerification, counts: dict[str, int]) -> dict[str, Any]:
    checked = verification.verifier
    if checked is None:
        return {"error": verification.error, "calls": verification.calls}
    counts["rest_mismatches"] = checked.mismatches.total
    counts["missing_at_start"] = checked.missing_start.total
    counts["missing_at_end"] = checked.missing_end.total
    return {
        "calls": verification.calls,
        "served": checked.served,
        "compared": checked.compared,
        "mismatches": _listed(checked.mismatches),
        "missing_at_start": list(checked.missing_start),
        "missing_at_end": list(checked.missing_end),
        "not_served": list(checked.not_served),
        "not_served_count": checked.not_served.total,
        "not_compared": checked.not_compared + checked.late,
        "notes": verification.notes,
        "error": verification.error,
    }


def _hole(hole: Hole) -> dict[str, Any]:
    return {
        "first_trade_id": hole.first_id,
        "last_trade_id": hole.last_id,
        "count": hole.count,
        "previous_time": iso_ms(hole.previous_ms),
        "next_time": iso_ms(hole.next_ms),
        "explained": hole.explained,
        "reasons": list(hole.reasons),
        "detail": hole.detail,
        "rest_served": hole.rest_served,
    }


def _listed(findings: Findings) -> list[dict[str, Any]]:
    items = findings.to_json()
    if findings.truncated:
        items.append({"more": findings.total - len(findings.items)})
    return items


def _mode(audit: PairAudit) -> str:
    numbers = audit.records - audit.invalid.total - audit.strings
    if audit.strings and numbers:
        return "mixed"
    if audit.strings:
        return "decimal_strings"
    return "numbers" if numbers else "unknown"
