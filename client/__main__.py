"""`python -m client ...`: the same as `m365-mock client ...`."""

import sys

from m365_mock.client.cli import run

sys.exit(run())
