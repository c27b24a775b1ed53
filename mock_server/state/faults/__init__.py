"""Fault rules: the failures of production (throttling, 5xx, dropped or slow connections) on demand.

`rules.py` reads a rule (from a tenant file's `faults:`, the control API, the plugin or a scenario) into a
`FaultRule` and says which requests it matches; `book.py` holds the rules in force with their counters and picks
the rule that acts on a request. No Flask here: the request path (`m365_mock.faultpoint`) and the server front
(`m365_mock.faultwire`) carry out what a rule does. docs/faults.md describes the format.
"""

from m365_mock.state.faults.book import FaultBook, FaultExists, FaultNotFound
from m365_mock.state.faults.rules import (
    MAILBOX_OPERATIONS,
    OPERATIONS,
    PRESETS,
    Facts,
    FaultRule,
    Preset,
    RuleRefused,
    read_rule,
    read_rules,
)

__all__ = [
    "MAILBOX_OPERATIONS",
    "OPERATIONS",
    "PRESETS",
    "Facts",
    "FaultBook",
    "FaultExists",
    "FaultNotFound",
    "FaultRule",
    "Preset",
    "RuleRefused",
    "read_rule",
    "read_rules",
]
