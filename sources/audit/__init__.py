"""The audit: check a trades topic against Kraken, independently of the pipeline's core.

It shares `schemas/` and the HTTP library with the pipeline, nothing else: its own accounting
of trade_ids (`ledger.py`), its own reader of Kraken's REST answers (`rest_rows.py`), and an
import boundary (no `sources.kraken`, no `sources.steps`) that a test keeps.

    reader.py      the topics (Kafka I/O): trades in batches, gap events, a pair again
    accounting.py  records -> per-pair findings (sans-I/O); ledger.py the trade_id sequence
    schema.py      trade.v1 / gap.v1, fast; explain.py holes <- gap events
    rest_rows.py   Kraken's Trades/AssetPairs answers; rest_client.py the REST budget
    verify.py      topic vs REST, trade by trade (sans-I/O); rest_verify.py drives it
    report.py      the report (JSON-ready) and exit code; render.py the tables
    settings.py    options and variables; pairs.py pair patterns; progress.py the ETA
    cli.py         `python -m sources.audit`, `pipelines/audit/main.py`

See docs/audit.md.
"""
