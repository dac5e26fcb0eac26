"""`python -m sources.audit --help`."""

import sys

from sources.app.startup import quiet_third_party_warnings

quiet_third_party_warnings()

from sources.audit.cli import main  # noqa: E402

sys.exit(main())
