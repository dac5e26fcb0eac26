"""`python -m sources.audit --help`."""

import sys

from sources.app.startup import quiet_third_party_warnings

if __name__ == "__main__":  # the reader processes import this module too (spawn)
    quiet_third_party_warnings()

    from sources.audit.cli import main

    sys.exit(main())
