"""The tenant world in versions: changes publish a new version or nothing; mail is kept per tenant; object ids
and addresses obey Entra's and Exchange's rules."""

from __future__ import annotations

import copy

import pytest

from m365_mock.state.directory import Directory, DirectoryError, Group, Mailbox, Tenant
from m365_mock.state.mailstore import MailStore
from m365_mock.state.tenantfile import ConfigError, load_world

SHARED_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def two_tenants(second_mailbox_id: str) -> dict:
    """The tenant-file example's helpdesk mailbox (with its explicit id) in two tenants."""
    return {
        "tenants": [
            {
                "domains": ["fabrikam.onmicrosoft.com"],
                "mailboxes": [{"address": "helpdesk@fabrikam.onmicrosoft.com", "type": "shared", "id": SHARED_ID}],
            },
            {
                "domains": ["northwind.onmicrosoft.com"],
                "mailboxes": [
                    {"address": "helpdesk@northwind.onmicrosoft.com", "type": "shared", "id": second_mailbox_id}
                ],
            },
        ]
    }


def test_a_mailbox_id_used_by_two_tenants_is_refused():
    with pytest.raises(ConfigError) as refused:
        load_world(two_tenants(SHARED_ID))
    message = str(refused.value)
    assert message.startswith("tenants[1]: mailbox helpdesk@northwind.onmicrosoft.com: the id " + SHARED_ID)
    assert "helpdesk@fabrikam.onmicrosoft.com" in message and "unique across tenants" in message


def test_mail_is_kept_per_tenant_even_for_equal_mailbox_ids():
    """The store key carries the tenant: equal ids in two tenants can never share a mailbox's mail."""
    mail = MailStore()
    first = Mailbox(id=SHARED_ID, address="helpdesk@fabrikam.onmicrosoft.com", display_name="A", tenant_id="t-a")
    second = Mailbox(id=SHARED_ID, address="helpdesk@northwind.onmicrosoft.com", display_name="B", tenant_id="t-b")
    store = mail.store(first)
    store.add_message(store.well_known["inbox"], subject="for tenant A only")
    assert mail.store(second) is not store
    assert mail.store(second).counts() == (0, 0)
    assert mail.store(first).counts() == (1, 1)


def test_a_mailbox_outside_every_tenant_has_no_store():
    with pytest.raises(ValueError, match="belongs to no tenant"):
        MailStore().store(Mailbox(id=SHARED_ID, address="a@b.example", display_name="A"))


def test_a_mailbox_and_a_group_cannot_share_an_id():
    data = two_tenants("1f8fad5b-d9cb-469f-a165-70867728950e")
    data["tenants"][0]["groups"] = [{"address": "scope@fabrikam.onmicrosoft.com", "id": SHARED_ID}]
    with pytest.raises(ConfigError, match=r"tenants\[0\]\.groups\[0\]: scope@fabrikam.onmicrosoft.com: the id"):
        load_world(data)


@pytest.mark.parametrize(
    ("where", "entry", "domain"),
    [
        ("mailboxes", {"address": "helpdesk@fabrikam.example"}, "fabrikam.example"),
        (
            "mailboxes",
            {"address": "a@fabrikam.onmicrosoft.com", "aliases": ["a@elsewhere.example"]},
            "elsewhere.example",
        ),
        ("groups", {"address": "scope@elsewhere.example"}, "elsewhere.example"),
    ],
)
def test_addresses_outside_the_accepted_domains_are_refused(where, entry, domain):
    data = {"tenants": [{"domains": ["fabrikam.onmicrosoft.com", "fabrikam.com"], where: [entry]}]}
    with pytest.raises(ConfigError) as refused:
        load_world(data)
    assert str(refused.value) == (
        f"tenants[0].{where}[0]: You can't use the domain {domain} because it's not an accepted domain for your "
        "organization."
    )


def test_every_accepted_domain_may_be_used():
    data = {
        "tenants": [
            {
                "domains": ["fabrikam.onmicrosoft.com", "fabrikam.com"],
                "mailboxes": [{"address": "a@FABRIKAM.com", "aliases": ["a@fabrikam.onmicrosoft.com"]}],
            }
        ]
    }
    tenant = load_world(data).directory.tenants[0]
    assert tenant.mailbox("a@fabrikam.com") is tenant.mailbox("A@Fabrikam.onmicrosoft.com")


def fabrikam() -> Tenant:
    tenant = Tenant(id="7b0c6a1e-2f3d-4c5b-9a8e-1d2c3b4a5f60", domains=["fabrikam.onmicrosoft.com"])
    tenant.add_mailbox(Mailbox(id=SHARED_ID, address="helpdesk@fabrikam.onmicrosoft.com", display_name="Helpdesk"))
    tenant.add_group(
        Group(id="2f8fad5b-d9cb-469f-a165-70867728950e", display_name="scope", address="scope@fabrikam.onmicrosoft.com")
    )
    return tenant


def test_an_edit_publishes_a_new_version_and_leaves_the_old_one_whole():
    directory = Directory([fabrikam()])
    before = directory.tenant("fabrikam.onmicrosoft.com")
    snapshot = copy.deepcopy(
        {"groups": {k: g.members for k, g in before.groups.items()}, "mailboxes": list(before.mailboxes)}
    )
    with directory.edit(before) as draft:
        draft.group("scope").members.append("helpdesk@fabrikam.onmicrosoft.com")
        draft.remove_mailbox(draft.mailbox("helpdesk@fabrikam.onmicrosoft.com"))
    after = directory.tenant("fabrikam.onmicrosoft.com")
    assert after is not before and after.version > before.version
    assert {"groups": {k: g.members for k, g in before.groups.items()}, "mailboxes": list(before.mailboxes)} == snapshot
    assert after.mailboxes == {} and after.group("scope").members == []


def test_a_failed_edit_publishes_nothing():
    directory = Directory([fabrikam()])
    before = directory.tenant("fabrikam.onmicrosoft.com")
    with pytest.raises(DirectoryError), directory.edit(before) as draft:
        draft.group("scope").members.append("helpdesk@fabrikam.onmicrosoft.com")
        draft.add_mailbox(Mailbox(id=SHARED_ID, address="other@fabrikam.onmicrosoft.com", display_name="x"))
    assert directory.tenant("fabrikam.onmicrosoft.com") is before
    assert before.group("scope").members == []


def test_an_edit_cannot_take_an_id_another_tenant_uses():
    other = Tenant(id="8b0c6a1e-2f3d-4c5b-9a8e-1d2c3b4a5f60", domains=["northwind.onmicrosoft.com"])
    directory = Directory([fabrikam(), other])
    with pytest.raises(DirectoryError, match="unique across tenants"), directory.edit(other) as draft:
        draft.add_mailbox(Mailbox(id=SHARED_ID, address="x@northwind.onmicrosoft.com", display_name="x"))
    assert directory.tenant("northwind.onmicrosoft.com").mailboxes == {}


def test_group_membership_is_resolved_once_per_version():
    directory = Directory([fabrikam()])
    with directory.edit("fabrikam.onmicrosoft.com") as draft:
        draft.add_group(
            Group(
                id="3f8fad5b-d9cb-469f-a165-70867728950e",
                display_name="outer",
                address="outer@fabrikam.onmicrosoft.com",
                members=["scope@fabrikam.onmicrosoft.com"],
            )
        )
        draft.group("scope").members.append(SHARED_ID)
    tenant = directory.tenant("fabrikam.onmicrosoft.com")
    outer = tenant.group("outer")
    assert tenant.group_members(outer, nested=True) == {SHARED_ID}
    assert tenant.group_members(outer, nested=False) == frozenset()
    assert tenant.group_members(outer, nested=True) is tenant.group_members(outer, nested=True)
