"""Directory lookups: tenants by GUID or domain, mailboxes by id, address or alias, groups by name."""

from __future__ import annotations

import threading

import pytest

from m365_mock.state.directory import Directory, DirectoryError, Mailbox, Tenant, canonical_permission


def test_tenant_lookup_ignores_case(tenant, emulator):
    directory = emulator.directory
    assert directory.tenant(tenant.id.upper()) is tenant
    assert directory.tenant(" Contoso.OnMicrosoft.com ") is tenant
    assert directory.tenant("contoso") is None


def test_mailbox_lookup_by_id_address_or_alias(tenant):
    support = tenant.mailbox("support@contoso.onmicrosoft.com")
    assert support is not None and support.kind == "shared"
    assert tenant.mailbox("SUPPORT@contoso.com") is support
    assert tenant.mailbox(support.id.upper()) is support
    assert tenant.mailbox("nobody@contoso.com") is None


def test_group_lookup_by_address_name_or_id(tenant):
    group = tenant.group("cctr_sec_group@contoso.onmicrosoft.com")
    assert tenant.group("CCTR_SEC_GROUP") is group
    assert tenant.group(group.id) is group


def test_address_clash_is_refused(tenant):
    with pytest.raises(DirectoryError):
        tenant.add_mailbox(
            Mailbox(
                id="f" * 8 + "-0000-0000-0000-" + "0" * 12,
                address="x@y.com",
                display_name="x",
                aliases=["support@contoso.com"],
            )
        )
    assert tenant.mailbox("x@y.com") is None


def test_permission_names_are_canonicalised():
    assert canonical_permission("mail.readwrite") == "Mail.ReadWrite"
    with pytest.raises(DirectoryError, match="unknown Graph application permission"):
        canonical_permission("Mail.Write")


def test_concurrent_tenant_additions_lose_nothing():
    directory = Directory()

    def add(i: int) -> None:
        directory.add_tenant(Tenant(id=f"00000000-0000-0000-0000-{i:012d}", domains=[f"t{i}.onmicrosoft.com"]))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(directory.tenants) == 64
    assert all(directory.tenant(f"t{i}.onmicrosoft.com") for i in range(64))
