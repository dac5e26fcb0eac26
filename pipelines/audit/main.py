"""The audit as a Quix Job (or a command): check a trades topic against Kraken, report, exit.

    settings (variables, or options) -> gap events -> read the trades -> [Kraken REST]
        -> report (tables, or JSON) -> exit 0 clean / 1 unexplained findings / 2 cannot check

Run: `python pipelines/audit/main.py --help`, `python -m sources.audit`, or the `audit`
deployment in quix.yaml (a Job, stopped until you start it). See docs/audit.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `quix run` and Quix Cloud start this file from its own folder, without the repository on
# PYTHONPATH: put the nearest folder that holds the shared `sources` package on sys.path.
_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(p) for p in (_HERE, *_HERE.parents) if (p / "sources").is_dir()][:1]
from sources.app.startup import quiet_third_party_warnings

quiet_third_party_warnings()

from sources.audit.cli import main

if __name__ == "__main__":
    sys.exit(main())
