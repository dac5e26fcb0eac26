"""The report for people: a summary table per pair, then what was found, pair by pair.

Rendered with rich (installed with Quix Streams), plain text when the output is not a
terminal (a Quix Job's log, a file). Long lists are cut at `details` lines per kind; `--json`
has them all (up to `--max-findings`).
"""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

__all__ = ["render"]

WIDTH = 160  # when the output is not a terminal
VERDICTS = {
    "clean": "CLEAN: every trade once, in order, gap-free, valid",
    "explained": "OK: every hole is explained by a gap event (--strict fails on them)",
    "unexplained": "FAILED: unexplained findings",
    "incomplete": "INCOMPLETE: nothing wrong found, but the check could not finish",
}


def render(report: dict[str, Any], stream: TextIO, *, details: int = 20) -> None:
    """Write the report as text to `stream`."""
    console = Console(file=stream, width=None if stream.isatty() else WIDTH, highlight=False)
    read = report["read"]
    window = report["window"]
    console.print(
        f"Audit of topic {report['topic']!r}"
        + (
            f" (gap events: {report['gaps_topic']!r})"
            if report["gaps_topic"]
            else " (no gaps topic)"
        )
        + f", pairs {report['pairs_selected']}, window {window['since'] or 'start'} .. "
        f"{window['until'] or 'end'}"
    )
    console.print(
        f"Read {read['records']:,} records from {read['partitions']} partitions in "
        f"{read['seconds']:.1f} s ({read['records_per_second']:,}/s; start: {read['start']}; "
        f"ended: {read['ended']}); {read['gap_events']} gap events"
    )
    if report["rest_usage"]:
        usage = report["rest_usage"]
        console.print(
            f"Asked Kraken's REST API {usage['calls']:,} times ({usage['throttled']} answered "
            "too many requests, and were asked again after a backoff)"
        )
    if report["pairs"]:
        console.print(_table(report))
    for pair in report["pairs"]:
        _pair_details(console, pair, details)
    for label, key in (
        ("Pairs named but absent from the window", "absent_pairs"),
        ("Records that are not trades of any pair", "invalid_without_pair"),
        ("Gap events that do not validate against gap.v1", "invalid_gap_events"),
        ("REST verification could not finish", "verify_errors"),
        ("Notes", "notes"),
    ):
        if report[key]:
            console.print(f"{label}:")
            for item in report[key][:details]:
                console.print(f"  {_text(item)}")
    summary = report["summary"]
    problems = ", ".join(f"{k} {v:,}" for k, v in summary["problems"].items()) or "none"
    verdict = VERDICTS[summary["status"]]
    if summary["status"] == "explained" and summary["strict"]:
        verdict = "FAILED (--strict): holes, each explained by a gap event"
    console.print(
        f"{verdict}. {_trades(summary['trades'])} of {_plural(summary['pairs'], 'pair')}; "
        f"unexplained: {problems}; explained holes: {summary['explained_holes']}. "
        f"Exit code {summary['exit_code']}."
    )


def _table(report: dict[str, Any]) -> Table:
    verified = report["verify_rest"]
    table = Table(title=None, show_lines=False)
    for column in ("pair", "trades", "trade_ids", "first (UTC)", "last (UTC)", "holes"):
        table.add_column(column, justify="right" if column == "trades" else "left", no_wrap=True)
    for column in ("dup", "order", "time", "key", "invalid"):
        table.add_column(column, justify="right", no_wrap=True)
    if verified:
        table.add_column("REST same/diff", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for pair in report["pairs"]:
        counts = pair["counts"]
        holes = f"{counts['unexplained_holes']}"
        if counts["unexplained_holes"]:
            holes += f" ({counts['missing_trades']:,})"
        if counts["explained_holes"]:
            holes += f" +{counts['explained_holes']} expl."
        row = [
            pair["pair"],
            f"{pair['trades']:,}",
            f"{pair['first_trade_id']}..{pair['last_trade_id']}",
            _short(pair["first_time"])[:16],
            _short(pair["last_time"])[:16],
            holes,
            f"{counts['duplicates']:,}",
            f"{counts['out_of_order'] + counts['undetermined']:,}",
            f"{counts['time_mismatches']:,}",
            f"{counts['key_mismatches']:,}",
            f"{counts['invalid']:,}",
        ]
        if verified:
            rest = pair.get("rest") or {}
            if rest.get("error"):
                row.append("error")
            else:
                diff = pair["counts"].get("rest_mismatches", 0)
                row.append(f"{rest['compared'] - diff:,}/{diff:,}")
        row.append(pair["status"])
        table.add_row(*row)
    return table


def _pair_details(console: Console, pair: dict[str, Any], details: int) -> None:
    lines: list[str] = []
    for hole in pair["holes"]:
        verdict = (
            f"explained: {', '.join(hole['reasons'])} ({hole['detail']})"
            if hole["explained"]
            else "UNEXPLAINED" + (f": {hole['detail']}" if hole["detail"] else "")
        )
        if hole["rest_served"] is not None:
            verdict += (
                f"; Kraken's REST serves {hole['rest_served']} of them (a real loss)"
                if hole["rest_served"]
                else "; Kraken's REST does not serve them either"
            )
        lines.append(
            f"hole {hole['first_trade_id']}..{hole['last_trade_id']} ({_trades(hole['count'])}, "
            f"{_short(hole['previous_time'])} .. {_short(hole['next_time'])}): {verdict}"
        )
    for run in _items(pair["duplicates"]):
        lines.append(
            f"duplicate {_ids(run)} (first repeat at partition {run['partition']} "
            f"offset {run['offset']})"
        )
    for run in _items(pair["out_of_order"]):
        lines.append(
            f"out of order: {_ids(run)} after {run['after_id']} "
            f"(partition {run['partition']} offset {run['offset']})"
        )
    for run in _items(pair["undetermined"]):
        lines.append(f"duplicate or late (beyond the open-hole bound): {_ids(run)}")
    for item in _items(pair["time_mismatches"]):
        lines.append(
            f"time: trade_id {item['trade_id']}: Kafka timestamp {item['kafka_timestamp_ms']}, "
            f"timestamp_ms {item['timestamp_ms']}, timestamp {item['timestamp']}"
        )
    for item in _items(pair["key_mismatches"]):
        lines.append(
            f"key: trade_id {item['trade_id']} has key {item['key']!r} "
            f"(partition {item['partition']} offset {item['offset']})"
        )
    for item in _items(pair["invalid"]):
        lines.append(
            f"invalid: trade_id {item['trade_id']} (partition {item['partition']} "
            f"offset {item['offset']}): {'; '.join(item['errors'])}"
        )
    rest = pair.get("rest")
    if rest:
        lines.extend(_rest_lines(rest))
    lines.extend(f"note: {note}" for note in pair["notes"])
    if not lines:
        return
    console.print(f"{pair['pair']}:")
    for line in lines[:details]:
        console.print(f"  {line}", soft_wrap=True)
    if len(lines) > details:
        console.print(f"  ... and {len(lines) - details} more lines (--json lists them)")


def _rest_lines(rest: dict[str, Any]) -> list[str]:
    if rest.get("error") and "compared" not in rest:
        return [f"REST: not verified: {rest['error']}"]
    listed = rest["mismatches"]
    differing = len(_items(listed)) + sum(m.get("more", 0) for m in listed)
    lines = [
        f"REST: {_trades(rest['compared'])} compared field by field "
        f"({_plural(rest['calls'], 'call')}): {_plural(differing, 'field')} "
        + ("differs" if differing == 1 else "differ")
    ]
    for item in _items(rest["mismatches"]):
        lines.append(
            f"REST differs: trade_id {item['trade_id']} {item['field']}: topic "
            f"{item['topic']!r}, Kraken {item['rest']!r}"
        )
    for key, label in (
        ("missing_at_start", "before the topic's first"),
        ("missing_at_end", "after the topic's last"),
    ):
        if rest[key]:
            lines.append(
                f"REST serves {len(rest[key])} trades {label} trade in the window: "
                f"{_id_list(rest[key])}"
            )
    if rest["not_served_count"]:
        lines.append(
            f"note: {rest['not_served_count']} trades of the topic are not served by "
            f"Kraken's REST: {_id_list(rest['not_served'])}"
        )
    lines.extend(f"note: {note}" for note in rest["notes"])
    return lines


def _trades(count: int) -> str:
    return _plural(count, "trade")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _items(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in listed if "more" not in item]


def _ids(run: dict[str, Any]) -> str:
    first, last = run["first_id"], run["last_id"]
    return f"trade_id {first}" if first == last else f"trade_ids {first}..{last}"


def _id_list(ids: list[int], most: int = 10) -> str:
    text = ", ".join(str(i) for i in ids[:most])
    return text + (", ..." if len(ids) > most else "")


def _short(iso: str | None) -> str:
    return "?" if iso is None else iso.replace("T", " ")[:23]


def _text(item: Any) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{k}={v}" for k, v in item.items())
    return str(item)
