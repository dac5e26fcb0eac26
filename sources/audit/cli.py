"""`python -m sources.audit`: audit a trades topic, print the report, exit 0, 1 or 2.

    settings (options over variables) -> the gap events -> read the trades (TopicAudit)
        -> [--verify-rest: Kraken's REST Trades, pair by pair] -> report -> tables or JSON

The report goes to stdout, progress and the log to stderr. See docs/audit.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import orjson

from .accounting import TopicAudit
from .explain import GapEvents
from .parallel import auto_workers, read_in_parallel, share_out
from .progress import Progress
from .reader import BrokerError, TopicReader, broker_config
from .render import render
from .report import build_report
from .rest_client import KrakenRest
from .rest_verify import PairVerification, verify_pairs
from .settings import AuditSettings, UsageError

__all__ = ["main", "run"]

logger = logging.getLogger("audit")


def main(argv: Sequence[str] | None = None) -> int:
    """The command: parse, run, report; the exit code (see `settings.EXIT_CODES`)."""
    try:
        settings = AuditSettings.parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"Usage error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help (0), or an option argparse could not read (2)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=settings.loglevel,
        stream=sys.stderr,
        format="[%(asctime)s] [%(levelname)s] %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per REST call otherwise
    if settings.loglevel != "DEBUG":
        logging.getLogger("audit.librdkafka").setLevel(logging.CRITICAL)
    try:
        return run(settings, sys.stdout)
    except BrokerError as exc:
        logger.error("Broker at %s: %s", settings.broker_address, exc)
        return 2


def run(settings: AuditSettings, out: TextIO, progress: Progress | None = None) -> int:
    """Audit as `settings` say, write the report to `out`; returns the exit code.

    :raises BrokerError: when the broker does not answer or the topic does not exist.
    """
    progress = progress or Progress()
    config, topic_id = broker_config(settings.broker_address)
    reader = TopicReader(config, idle_timeout=settings.idle_timeout)
    topic = topic_id(settings.input)
    partitions = reader.partitions(topic)
    if partitions is None:
        raise BrokerError(f"topic {settings.input!r} does not exist (input)")
    events = _gap_events(reader, settings.gaps_input, topic_id, settings.max_findings)
    audit = TopicAudit(
        settings.pairs,
        settings.since_ms,
        settings.until_ms,
        max_findings=settings.max_findings,
        track_offsets=settings.verify_rest,
    )
    groups = share_out(partitions, settings.workers or auto_workers(len(partitions)))
    logger.info(
        "Reading %s (%d partitions, %d reader processes) from %s",
        topic,
        len(partitions),
        len(groups),
        settings.broker_address,
    )
    with progress.task("Reading trades", "records") as update:
        if len(groups) == 1:
            stats = reader.read_trades(topic, partitions, audit, progress=update)
        else:
            stats = read_in_parallel(
                reader, topic, groups, audit, loglevel=settings.loglevel, progress=update
            )
    audit.settle()  # each pair's records on other partitions joined to it
    verifications, rest_usage = None, None
    if settings.verify_rest:
        verifications, rest_usage = _verify_rest(settings, audit, reader, topic, progress)
    report = build_report(settings, audit, stats, events, verifications, rest_usage=rest_usage)
    if settings.json:
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        render(report, out)
    out.flush()
    return report["summary"]["exit_code"]


def _verify_rest(
    settings: AuditSettings, audit: TopicAudit, reader: TopicReader, topic: str, progress: Progress
) -> tuple[dict[str, PairVerification], dict[str, int]]:
    """Every audited pair against Kraken's REST API: (the verifications, the calls made)."""
    rest = KrakenRest(settings.kraken_rest_url, interval=settings.rest_interval)
    try:
        with progress.task("Asking Kraken's REST API", "calls") as update:
            verifications = verify_pairs(
                [a for a in audit.pairs.values() if a.records],
                rest,
                reader,
                topic,
                since_ms=settings.since_ms,
                until_ms=settings.until_ms,
                max_findings=settings.max_findings,
                progress=update,
            )
    finally:
        rest.close()
    return verifications, {"calls": rest.calls, "throttled": rest.throttled}


def _gap_events(
    reader: TopicReader, name: str, topic_id: Callable[[str], str], max_findings: int
) -> GapEvents:
    """Every gap event of the gaps topic; none (and said so) when there is no such topic."""
    try:
        topic = topic_id(name)
        partitions = reader.partitions(topic)
    except BrokerError as exc:
        logger.info("Gaps topic %r: %s", name, exc)
        partitions = None
    if partitions is None:
        logger.info("No gaps topic %r: holes cannot be explained", name)
        return GapEvents(max_findings, found=False)
    events = GapEvents(max_findings)
    reader.read_gaps(topic, partitions, events)
    return events
