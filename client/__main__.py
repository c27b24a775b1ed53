"""`python -m client ...`: the same as `m365-mock client ...`."""

import sys

from client.cli import run

sys.exit(run())
