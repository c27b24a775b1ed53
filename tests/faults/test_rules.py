"""Fault rules on their own (state/faults): what each criterion matches, when a schedule acts, what is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from m365_mock.state.faults import Facts, FaultBook, FaultExists, FaultNotFound, RuleRefused, read_rule, read_rules

GRAPH = "/v1.0/users/support@contoso.com/messages"


def facts(path: str = GRAPH, method: str = "GET", **more: Any) -> Facts:
    return Facts(method=method, path=path, graph=path.startswith("/v1.0"), **more)


def fired(book: FaultBook, requests: int, **more: Any) -> list[int]:
    """The numbers (1-based) of the requests a rule of `book` acted on."""
    return [n for n in range(1, requests + 1) if book.match(book.rules, facts(**more)) is not None]


def book_of(**spec: Any) -> FaultBook:
    return FaultBook([read_rules([{"status": 503, **spec}])[0]])


# ---------------------------------------------------------------- criteria


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("/v1.0/users/*/messages", GRAPH, True),
        ("/v1.0/users/*/messages", "/v1.0/users/support@contoso.com/mailFolders/inbox/messages", False),
        ("/v1.0/users/**/messages", "/v1.0/users/support@contoso.com/mailFolders/inbox/messages", True),
        ("/V1.0/USERS/*/MESSAGES", GRAPH, True),
        ("/v1.0/users/*/messages", GRAPH + "/AAMk", False),
        ("/v1.0/users/*/messages*", GRAPH + "/AAMk", False),
        ("/v1.0/users/*/messages/*", GRAPH + "/AAMk", True),
        ("/v1.0/users/support@contoso.co?/messages", GRAPH, True),
        ("/v1.0/users/a.b/messages", "/v1.0/users/aXb/messages", False),
        ("/*/oauth2/v2.0/token", "/contoso.com/oauth2/v2.0/token", True),
        ("*/oauth2/v2.0/token", "/contoso.com/oauth2/v2.0/token", False),
        ("**/oauth2/v2.0/token", "/contoso.com/oauth2/v2.0/token", True),
    ],
)
def test_path_globs_star_within_a_segment_double_star_across(glob, path, matches):
    assert read_rule({"path": glob, "status": 503}).matches(facts(path)) is matches


def test_path_regex_is_searched_as_written():
    rule = read_rule({"path_regex": r"/messages/[A-Z]", "status": 503})
    assert rule.matches(facts(GRAPH + "/AAMk"))
    assert not rule.matches(facts(GRAPH + "/aamk"))
    assert read_rule({"path_regex": r"^/v1\.0/users/[^/]+/messages$", "status": 503}).matches(facts())


def test_method_one_or_several_any_case():
    assert read_rule({"method": "post", "status": 503}).matches(facts(method="POST"))
    assert not read_rule({"method": "post", "status": 503}).matches(facts(method="GET"))
    rule = read_rule({"method": ["PATCH", "delete"], "status": 503})
    assert [rule.matches(facts(method=m)) for m in ("PATCH", "DELETE", "GET")] == [True, True, False]


class _App:
    display_name = "Contact Center Connector"


class _Tenant:
    def application(self, app_id: str):
        return _App() if app_id == "11111111-1111-1111-1111-111111111111" else None


APP_ID = "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize("app", [APP_ID, APP_ID.upper(), "contact center connector"])
def test_app_by_id_or_display_name(app):
    rule = read_rule({"app": app, "status": 503})
    assert rule.at_gate
    assert rule.matches(facts(app_id=APP_ID, tenant=_Tenant()))
    assert not rule.matches(facts(app_id="22222222-2222-2222-2222-222222222222", tenant=_Tenant()))
    assert not rule.matches(facts())  # before the route no app is known


def test_mailbox_as_the_url_names_it_or_as_it_resolved():
    rule = read_rule({"mailbox": "Support@Contoso.com", "status": 503})
    assert rule.matches(facts(user="support@contoso.com", address="support@contoso.com"))
    assert rule.matches(facts(user="help@contoso.com", address="support@contoso.com"))  # an alias in the URL
    assert read_rule({"mailbox": "help@contoso.com", "status": 503}).matches(
        facts(user="help@contoso.com", address="support@contoso.com")
    )
    assert not rule.matches(facts(user="sales@contoso.com", address="sales@contoso.com"))
    assert not rule.matches(facts())


def test_operation_one_or_several():
    rule = read_rule({"operation": ["write", "send"], "status": 503})
    assert [rule.matches(facts(operation=o)) for o in ("read", "write", "send", None)] == [False, True, True, False]
    assert rule.at_gate
    token = read_rule({"operation": "token", "status": 503})
    assert not token.at_gate  # the token endpoint is known by its path, before the route
    assert token.matches(facts("/contoso.com/oauth2/v2.0/token", "POST", operation="token"))


def test_where_each_rule_is_matched():
    assert not read_rule({"status": 503, "path": "/v1.0/**", "method": "GET"}).at_gate
    assert not read_rule({"preset": "service-unavailable"}).at_gate
    assert not read_rule({"preset": "token-endpoint-down"}).at_gate
    assert read_rule({"preset": "throttle"}).at_gate  # Exchange throttles mailbox and directory requests
    assert read_rule({"preset": "invalid-user"}).at_gate
    assert read_rule({"latency": 1, "mailbox": "a@b.c"}).at_gate


def test_graph_presets_answer_graph_and_the_token_preset_the_token_endpoint():
    token_path = facts("/contoso.com/oauth2/v2.0/token", "POST", operation="token")
    assert read_rule({"preset": "token-endpoint-down"}).matches(token_path)
    assert not read_rule({"preset": "token-endpoint-down"}).matches(facts())
    assert not read_rule({"preset": "gateway-timeout"}).matches(token_path)
    assert read_rule({"preset": "gateway-timeout"}).matches(facts())
    invalid_user = read_rule({"preset": "invalid-user"})
    assert not invalid_user.matches(facts(operation="read directory"))  # no mailbox named
    assert invalid_user.matches(facts(operation="read", user="ghost@contoso.com"))


def test_inside_a_batch_only_answers_match():
    inner = facts(in_batch=True)
    assert read_rule({"status": 503}).matches(inner)
    assert read_rule({"preset": "gateway-timeout"}).matches(inner)
    for spec in ({"close": "before"}, {"truncate": 3}, {"invalid_json": True}, {"trickle": {}}, {"latency": 1}):
        assert not read_rule(spec).matches(inner), spec
    assert not read_rule({"status": 503, "latency": 1}).matches(inner)


# ---------------------------------------------------------------- schedules


def test_every_matching_request_until_removed_by_default():
    assert fired(book_of(), 5) == [1, 2, 3, 4, 5]


def test_nth_acts_on_that_request_only():
    assert fired(book_of(nth=3), 8) == [3]


def test_nth_with_times_acts_from_it_on():
    assert fired(book_of(nth=3, times=2), 8) == [3, 4]


def test_every_kth_from_nth_on():
    assert fired(book_of(every=3), 10) == [3, 6, 9]
    assert fired(book_of(every=3, nth=2), 10) == [2, 5, 8]
    assert fired(book_of(every=2, times=2), 10) == [2, 4]


def test_times_alone_then_spent():
    book = book_of(times=2)
    assert fired(book, 4) == [1, 2]
    assert book.counters(book.rules[0]) == (4, 2, True)


def test_probability_follows_its_seed_exactly():
    assert fired(book_of(probability=0.5, seed=7), 20) == [1, 2, 4, 6, 7, 9, 10, 11, 12, 13, 15, 16, 20]
    assert fired(book_of(probability=0.5, seed=7), 20) == [1, 2, 4, 6, 7, 9, 10, 11, 12, 13, 15, 16, 20]
    assert fired(book_of(probability=0.5), 20) == [3, 4, 6, 8, 9, 13, 16]  # seed 0 when none is given
    assert fired(book_of(probability=1.0), 3) == [1, 2, 3]


def test_probability_is_drawn_only_for_requests_the_schedule_allows():
    assert fired(book_of(probability=0.5, seed=7, every=2), 20) == [2, 4, 8, 12, 14, 18, 20]


def test_only_requests_meeting_the_criteria_count():
    book = book_of(nth=2, path="/v1.0/users/*/messages")
    other = "/v1.0/users/support@contoso.com/mailFolders"
    assert book.match(book.rules, facts(other)) is None
    assert book.match(book.rules, facts()) is None
    assert book.match(book.rules, facts(other)) is None
    assert book.match(book.rules, facts()) is book.rules[0]
    assert book.counters(book.rules[0]) == (2, 1, True)


def test_the_first_rule_acts_and_the_others_count_the_request():
    first, second = read_rules([{"status": 503, "nth": 2}, {"status": 500, "nth": 2, "times": 2}])
    book = FaultBook([first, second])
    assert [book.match(book.rules, facts()) for _ in range(4)] == [None, first, second, second]
    assert book.counters(first) == (4, 1, True)
    assert book.counters(second) == (4, 2, True)


def test_counters_hold_under_concurrent_requests():
    book = book_of(every=3, times=100)
    acted: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(200):
            if book.match(book.rules, facts()) is not None:
                with lock:
                    acted.append(1)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert book.counters(book.rules[0]) == (1600, 100, True)
    assert len(acted) == 100


# ---------------------------------------------------------------- the book


def test_ids_given_or_fault_n_and_unique():
    rules = read_rules([{"latency": 1}, {"id": "fault-1", "latency": 1}, {"latency": 1}])
    assert [r.id for r in rules] == ["fault-2", "fault-1", "fault-3"]
    book = FaultBook(rules)
    assert book.add(read_rule({"latency": 2})).id == "fault-4"
    assert book.add(read_rule({"id": "slow", "latency": 2})).spec == {"id": "slow", "latency": 2}
    with pytest.raises(FaultExists):
        book.add(read_rule({"id": "slow", "latency": 3}))
    with pytest.raises(RuleRefused) as refused:
        read_rules([{"id": "x", "latency": 1}, {"id": "x", "latency": 1}])
    assert (refused.value.path, refused.value.message) == (("faults", 1, "id"), "'x' is already the id of faults[0]")


def test_remove_clear_replace_and_a_rule_added_again_counts_afresh():
    book = FaultBook()
    rule = book.add(read_rule({"id": "a", "status": 503, "times": 1}))
    assert book.match(book.rules, facts()) is rule
    assert book.remove("a") is rule
    with pytest.raises(FaultNotFound):
        book.remove("a")
    again = book.add(read_rule({"id": "a", "status": 503, "times": 1}))
    assert book.match(book.rules, facts()) is again
    assert book.clear() == 1 and book.rules == () and book.before_route == () and book.at_gate == ()
    version = book.version
    book.replace(read_rules([{"latency": 1}, {"latency": 1, "app": "x"}]))
    assert (len(book.before_route), len(book.at_gate), book.version > version) == (1, 1, True)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (
            {},
            (),
            "a rule must say what it does: give one of preset, status, close, truncate, invalid_json, trickle, "
            "or latency",
        ),
        ({"status": 503, "close": "before"}, ("close",), "a rule does one thing: give only one of status, close"),
        (
            {"preset": "throttle", "truncate": 1},
            ("truncate",),
            "a rule does one thing: give only one of preset, truncate",
        ),
        ({"close": "after", "retry_after": 1}, ("retry_after",), "'retry_after' belongs to a status or a preset"),
        ({"latency": 1, "code": "X"}, ("code",), "'code' belongs to a status or a preset"),
        (
            {"preset": "throttle", "message": "x"},
            ("message",),
            "a preset fixes status, code and message; give status instead",
        ),
        (
            {"status": 503, "path": "/a", "path_regex": "a"},
            ("path_regex",),
            "give path (a glob) or path_regex, not both",
        ),
        (
            {"status": 503, "path_regex": "("},
            ("path_regex",),
            "not a regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            {"status": 503, "path": "v1.0/users"},
            ("path",),
            "a path starts with '/': it is matched against the whole path",
        ),
        ({"status": 503, "seed": 3}, ("seed",), "'seed' seeds the random source of 'probability'"),
        (
            {"status": 503, "mailbox": "a@b.c", "operation": "token"},
            ("mailbox",),
            "token and directory requests name no mailbox; leave out 'mailbox'",
        ),
        (
            {"preset": "token-endpoint-down", "operation": "read"},
            ("operation",),
            "the preset token-endpoint-down answers the token endpoint: operation is token",
        ),
        (
            {"preset": "token-endpoint-down", "mailbox": "a@b.c"},
            ("mailbox",),
            "the preset token-endpoint-down answers the token endpoint, which names no mailbox",
        ),
        (
            {"preset": "throttle", "operation": ["read", "token"]},
            ("operation",),
            "the preset throttle answers Graph requests, not the token endpoint",
        ),
        (
            {"preset": "invalid-user", "operation": "read directory"},
            ("operation",),
            "the preset invalid-user answers requests on a mailbox: read, write or send",
        ),
    ],
)
def test_combinations_no_request_could_meet_are_refused(spec, path, message):
    with pytest.raises(RuleRefused) as refused:
        read_rule(spec)
    assert (refused.value.path, refused.value.message) == (path, message)
