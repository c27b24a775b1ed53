"""The fault rules in force and their counters: which rule acts on a request.

Rules are kept in the order they were added, published as immutable tuples (`before_route`, `at_gate`) that
request threads read without a lock; an empty tuple is the whole cost of matching when no rule exists. A rule's
counters (requests matched, times it acted, its random source) change under one lock, taken only when some
rule's criteria match the request.

Every rule whose criteria match a request counts it; the first of them, in the order added, whose schedule says
"now" acts on it, and the others do not (at most one rule acts on a request).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from m365_mock.state.faults.rules import Facts, FaultRule, with_id


class FaultNotFound(LookupError):
    """No rule has that id."""


class FaultExists(ValueError):
    """A rule with that id is in force already."""


@dataclass
class _Counts:
    rule: FaultRule
    matched: int = 0
    fired: int = 0
    random: random.Random | None = field(default=None, repr=False)


class FaultBook:
    """The rules in force, in the order added, with their counters; safe to use from many request threads."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}
        self._number = 0
        self.rules: tuple[FaultRule, ...] = ()
        self.before_route: tuple[FaultRule, ...] = ()
        self.at_gate: tuple[FaultRule, ...] = ()
        self.version = 0  # changes whenever the rules do (not their counters): what `serve --persist` watches
        self.replace(rules)

    # ------------------------------------------------------------ changes

    def replace(self, rules: Iterable[FaultRule]) -> None:
        """Make `rules` the rules in force (ids given), their counters from zero."""
        with self._lock:
            self._counts = {}
            self._number = 0
            self._publish(list(rules))

    def add(self, rule: FaultRule) -> FaultRule:
        """Put `rule` in force after the others; without an id it gets the next free `fault-N`."""
        with self._lock:
            if not rule.id:
                self._number += 1
                while f"fault-{self._number}" in self._counts:
                    self._number += 1
                rule = with_id(rule, f"fault-{self._number}")
            elif rule.id in self._counts:
                raise FaultExists(f"A fault rule with the id '{rule.id}' is in force already.")
            self._publish([*self.rules, rule])
            return rule

    def remove(self, rule_id: str) -> FaultRule:
        with self._lock:
            counts = self._counts.get(rule_id)
            if counts is None:
                raise FaultNotFound(f"No fault rule has the id '{rule_id}'.")
            self._publish([r for r in self.rules if r.id != rule_id])
            return counts.rule

    def clear(self) -> int:
        """Remove every rule; how many there were."""
        with self._lock:
            removed = len(self.rules)
            self._publish([])
            return removed

    def _publish(self, rules: list[FaultRule]) -> None:
        kept = {rule.id: self._counts.get(rule.id) for rule in rules}
        self._counts = {
            rule.id: counts if counts is not None and counts.rule is rule else self._fresh(rule)
            for rule, counts in zip(rules, kept.values(), strict=True)
        }
        self.rules = tuple(rules)
        self.before_route = tuple(r for r in rules if not r.at_gate)
        self.at_gate = tuple(r for r in rules if r.at_gate)
        self.version += 1

    @staticmethod
    def _fresh(rule: FaultRule) -> _Counts:
        return _Counts(rule, random=random.Random(rule.seed) if rule.probability is not None else None)

    # ------------------------------------------------------------ reading

    def get(self, rule_id: str) -> FaultRule:
        counts = self._counts.get(rule_id)
        if counts is None:
            raise FaultNotFound(f"No fault rule has the id '{rule_id}'.")
        return counts.rule

    def counters(self, rule: FaultRule) -> tuple[int, int, bool]:
        """(requests matched, times acted, spent: acted as many times as it may) of a rule in force."""
        with self._lock:
            counts = self._counts.get(rule.id)
            matched, fired = (counts.matched, counts.fired) if counts is not None and counts.rule is rule else (0, 0)
        return matched, fired, rule.times is not None and fired >= rule.times

    # ------------------------------------------------------------ matching

    def match(self, rules: tuple[FaultRule, ...], facts: Facts) -> FaultRule | None:
        """The rule of `rules` that acts on the request `facts` describes, if any (its counters updated)."""
        candidates = [rule for rule in rules if rule.matches(facts)]
        if not candidates:
            return None
        chosen: FaultRule | None = None
        with self._lock:
            for rule in candidates:
                counts = self._counts.get(rule.id)
                if counts is None or counts.rule is not rule:  # removed since the tuple was read
                    continue
                counts.matched += 1
                if rule.times is not None and counts.fired >= rule.times:
                    continue
                seen = counts.matched
                if seen < rule.nth or (seen - rule.nth) % rule.every:
                    continue
                if counts.random is not None and counts.random.random() >= (rule.probability or 0.0):
                    continue
                if chosen is None:
                    counts.fired += 1
                    chosen = rule
        return chosen
