"""Recipient filters of management scopes: what they match, Exchange's refusals, and bounded cost."""

from __future__ import annotations

import random
import re

import pytest

from m365_mock.state.directory import DirectoryError, Group, Mailbox, Tenant
from m365_mock.state.recipientfilter import (
    FILTER_PROPERTIES,
    MAX_NESTING,
    RecipientFilterError,
    like,
    parse_recipient_filter,
)

DOMAIN = "fabrikam.example"


def direct_member(tenant: Tenant, group: Group, mailbox: Mailbox, *, nested: bool) -> bool:
    """Membership as the scope asks for it: direct members only."""
    assert nested is False
    return any(tenant.mailbox(member) is mailbox for member in group.members)


@pytest.fixture
def tenant() -> Tenant:
    t = Tenant(id="11111111-2222-3333-4444-555555555555", domains=[DOMAIN])
    t.add_mailbox(
        Mailbox(
            id="00000000-0000-0000-0000-000000000001",
            address=f"ann@{DOMAIN}",
            display_name="Ann Agent",
            custom_attributes={1: "emea"},
        )
    )
    t.add_mailbox(
        Mailbox(
            id="00000000-0000-0000-0000-000000000002",
            address=f"sales@{DOMAIN}",
            display_name="Sales Desk",
            kind="shared",
            custom_attributes={3: "em-north"},
        )
    )
    t.add_mailbox(
        Mailbox(
            id="00000000-0000-0000-0000-000000000003",
            address=f"bob@{DOMAIN}",
            display_name="Bob\nBuilder",
            aliases=[f"robert@{DOMAIN}"],
        )
    )
    t.add_group(Group(id="00000000-0000-0000-0000-0000000000a1", display_name="inner", address=f"inner@{DOMAIN}"))
    t.group("inner").members.append(f"bob@{DOMAIN}")
    t.add_group(
        Group(
            id="00000000-0000-0000-0000-0000000000a2",
            display_name="cctr_sec_group",
            address=f"cctr_sec_group@{DOMAIN}",
            members=[f"ann@{DOMAIN}", f"inner@{DOMAIN}"],
        )
    )
    return t


def matching(tenant: Tenant, text: str) -> list[str]:
    predicate = parse_recipient_filter(text, direct_member)
    mailboxes = sorted(tenant.mailboxes.values(), key=lambda m: m.id)
    return [m.address.split("@")[0] for m in mailboxes if predicate(tenant, m)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MemberOfGroup -eq 'cctr_sec_group'", ["ann"]),
        ("MemberOfGroup -eq 'CN=cctr_sec_group,OU=x'", ["ann"]),
        ("MemberOfGroup -ne 'cctr_sec_group'", ["sales", "bob"]),
        ("MemberOfGroup -eq 'no_such_group'", []),
        ("CustomAttribute1 -eq 'emea'", ["ann"]),
        ("customattribute1 -EQ 'EMEA'", ["ann"]),
        (f"PrimarySmtpAddress -eq 'sales@{DOMAIN}'", ["sales"]),
        ("RecipientTypeDetails -eq 'SharedMailbox' -and -not(CustomAttribute1 -eq 'emea')", ["sales"]),
        ("RecipientTypeDetails -eq 'UserMailbox' -or CustomAttribute1 -eq 'emea'", ["ann", "bob"]),
        ("CustomAttribute3 -like 'em*'", ["sales"]),
        ("CustomAttribute3 -notlike 'em*'", ["ann", "bob"]),
        (f"EmailAddresses -eq 'smtp:robert@{DOMAIN}'", ["bob"]),
        ("EmailAddresses -like 'ROBERT@*'", ["bob"]),
        ("Alias -eq sales", ["sales"]),
        ('DisplayName -like "*agent"', ["ann"]),
        ("DisplayName -like 'Bob*Builder'", ["bob"]),  # * spans a line break
        ("(Alias -eq 'ann' -or Alias -eq 'bob') -and -not -not (CustomAttribute1 -ne 'emea')", ["bob"]),
        ("CustomAttribute1 -eq ''", ["sales", "bob"]),
        ("DisplayName -eq 'it''s'", []),
    ],
)
def test_filters_match_as_exchange_evaluates_them(tenant, text, expected):
    assert matching(tenant, text) == expected


def test_member_of_group_counts_direct_members_only(tenant):
    asked: list[bool] = []

    def spy(t: Tenant, group: Group, mailbox: Mailbox, *, nested: bool) -> bool:
        asked.append(nested)
        return direct_member(t, group, mailbox, nested=nested)

    predicate = parse_recipient_filter("MemberOfGroup -eq 'cctr_sec_group'", spy)
    assert not predicate(tenant, tenant.mailbox(f"bob@{DOMAIN}"))  # only through the nested group "inner"
    assert asked == [False]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("CustomAttribute1 -eq", 21),
        ("", 1),
        ("Alias -eq 'a' Alias", 15),
        ("(Alias -eq 'a'", 15),
        ("Alias -gt 'a'", 6),
        ("Alias -eq 'a' -and", 19),
        ("Alias -eq 'unterminated", 10),
        ("Alias -eq 5", 10),
    ],
)
def test_bad_syntax_is_refused_with_the_position(text, position):
    with pytest.raises(RecipientFilterError) as caught:
        parse_recipient_filter(text, direct_member)
    assert str(caught.value) == f'Invalid filter syntax. "{text}" at position {position}.'
    assert isinstance(caught.value, DirectoryError)


def test_unknown_property_is_refused_by_name():
    with pytest.raises(RecipientFilterError) as caught:
        parse_recipient_filter("Department -eq 'Sales'", direct_member)
    assert str(caught.value) == "The property 'Department' can't be used in a recipient restriction filter."
    assert "department" not in FILTER_PROPERTIES


@pytest.mark.parametrize("opening", ["(", "-not("])
def test_nesting_5000_deep_is_refused_not_a_recursion_error(opening):
    text = opening * 5000 + "Alias -eq 'ann'" + ")" * 5000
    with pytest.raises(RecipientFilterError) as caught:
        parse_recipient_filter(text, direct_member)
    position = MAX_NESTING + 1 if opening == "(" else 5 * (MAX_NESTING // 2) + 1
    assert str(caught.value) == f'Invalid filter syntax. "{text}" at position {position}.'


def test_nesting_up_to_the_bound_is_accepted(tenant):
    assert matching(tenant, "(" * MAX_NESTING + "Alias -eq 'ann'" + ")" * MAX_NESTING) == ["ann"]
    assert matching(tenant, "-not " * MAX_NESTING + "Alias -eq 'ann'") == ["ann"]  # an even number of -not
    with pytest.raises(RecipientFilterError, match=r"^Invalid filter syntax\. "):
        parse_recipient_filter("-not " * (MAX_NESTING + 1) + "Alias -eq 'ann'", direct_member)


@pytest.mark.parametrize("joiner", [" -or ", " -and "])
def test_long_chains_evaluate_without_recursing_per_operand(tenant, joiner):
    terms = ["Alias -eq 'ann'"] + ["Alias -ne 'nobody'"] * 5000
    expected = ["ann"] if joiner == " -and " else ["ann", "sales", "bob"]
    assert matching(tenant, joiner.join(terms)) == expected


# ---------------------------------------------------------------- -like


def regex_like(pattern: str, value: str) -> bool:
    """The former regex translation, exact for values without line breaks (the reference for the fuzz)."""
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("*")) + "$"
    return re.match(regex, value.lower()) is not None


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("em*", "EMEA", True),
        ("*ea", "emea", True),
        ("a*a", "a", False),
        ("a*a", "aa", True),
        ("a**b", "ab", True),
        ("*b*", "abc", True),
        ("*b*b*", "abc", False),
        ("exact", "EXACT", True),
        ("exact", "exactly", False),
        ("a.c", "abc", False),  # only * is a wildcard
        ("a?c", "abc", False),
        ("x*[y]*", "x[y]", True),
    ],
)
def test_like_is_a_case_insensitive_glob_over_star(pattern, value, expected):
    assert like(pattern, value) is expected


def test_like_agrees_with_the_regex_reference():
    rng = random.Random(20260401)
    for _ in range(5000):
        pattern = "".join(rng.choice("aAb*.") for _ in range(rng.randrange(0, 9)))
        value = "".join(rng.choice("aAb.") for _ in range(rng.randrange(0, 11)))
        assert like(pattern, value) is regex_like(pattern, value), (pattern, value)


def test_like_with_a_thousand_wildcards_against_10_kb_answers_correctly():
    pattern = "*a" * 1000 + "*"  # 2,001 characters: a regex of `.*a` chains backtracks without end on a miss
    assert len(pattern) == 2001
    assert like(pattern, "a" * 10_000) is True
    assert like(pattern, "ba" * 5_000) is True
    assert like(pattern, "a" * 999 + "b" * 9_001) is False
    assert like(pattern + "c", "a" * 10_000) is False
    assert like(pattern + "c", "a" * 10_239 + "c") is True


def test_like_pattern_in_a_filter_is_linear_in_practice(tenant):
    tenant.mailbox(f"ann@{DOMAIN}").custom_attributes[2] = "a" * 9_999 + "b"
    text = "CustomAttribute2 -like '" + "*a" * 1000 + "*c'"
    assert matching(tenant, text) == []
    assert matching(tenant, "CustomAttribute2 -like '" + "*a" * 1000 + "*b'") == ["ann"]
