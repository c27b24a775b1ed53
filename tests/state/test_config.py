"""Tenant files in and out, and the deterministic demo tenant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from m365_mock.identity.keys import certificate_pem, new_rsa_key, self_signed_certificate
from m365_mock.state.tenantfile import (
    ConfigError,
    dump_world,
    load_demo_world,
    load_tenant_file,
    load_world,
    write_tenant_file,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def minimal(**app_fields):
    return {
        "tenants": [
            {
                "domains": ["fabrikam.onmicrosoft.com"],
                "mailboxes": [{"address": "help@fabrikam.onmicrosoft.com", "type": "shared"}],
                "applications": [{"display_name": "Helpdesk", "permissions": ["Mail.Read"], **app_fields}],
            }
        ]
    }


def test_demo_tenant_is_the_admins_setup():
    world = load_demo_world()
    tenant = world.directory.tenant("contoso.onmicrosoft.com")
    assert tenant is world.directory.tenant("contoso.com")
    app = next(iter(tenant.applications.values()))
    assert app.display_name == "Contact Center Connector"
    assert app.permissions == ["Mail.ReadWrite", "Mail.Send"] and app.consent_granted
    assert len(app.secrets) == 1
    shared = {m.address for m in tenant.mailboxes.values() if m.kind == "shared"}
    assert {
        "support@contoso.onmicrosoft.com",
        "sales@contoso.onmicrosoft.com",
        "billing@contoso.onmicrosoft.com",
    } <= shared
    assert sum(m.kind == "user" for m in tenant.mailboxes.values()) >= 3
    group = tenant.group("cctr_sec_group")
    assert group.address == "cctr_sec_group@contoso.onmicrosoft.com"
    assert "support@contoso.onmicrosoft.com" in group.members
    assert "sales@contoso.onmicrosoft.com" not in group.members
    assert world.generated_secrets == []


def test_demo_tenant_is_the_same_on_every_start():
    first, second = load_demo_world(), load_demo_world()
    a, b = first.directory.tenants[0], second.directory.tenants[0]
    assert a.id == b.id
    assert sorted(a.mailboxes) == sorted(b.mailboxes)
    assert [m.address for m in a.mailboxes.values()] == [m.address for m in b.mailboxes.values()]
    app_a, app_b = next(iter(a.applications.values())), next(iter(b.applications.values()))
    assert (app_a.app_id, app_a.secrets[0].value, app_a.service_principal_id) == (
        app_b.app_id,
        app_b.secrets[0].value,
        app_b.service_principal_id,
    )


def test_secret_value_looks_like_an_entra_secret():
    value = load_demo_world().directory.tenants[0].applications.popitem()[1].secrets[0].value
    assert len(value) == 40 and value[3:6] == "8Q~"


def test_ids_are_derived_from_names_when_left_out():
    one = load_world(minimal(), now=NOW).directory.tenants[0]
    two = load_world(minimal(), now=NOW).directory.tenants[0]
    assert one.id == two.id
    assert list(one.applications) == list(two.applications)


def test_left_out_secret_value_is_generated_and_reported_once():
    world = load_world(minimal(secrets=[{"display_name": "ci"}]), now=NOW)
    app = world.directory.tenants[0].applications.popitem()[1]
    assert len(world.generated_secrets) == 1
    generated = world.generated_secrets[0]
    assert generated.value == app.secrets[0].value and generated.app_id == app.app_id
    other = load_world(minimal(secrets=[{}]), now=NOW).generated_secrets[0]
    assert other.value != generated.value


def test_secret_expiry_given_as_date_or_days():
    world = load_world(
        minimal(secrets=[{"value": "a", "expires": "2026-06-30T00:00:00Z"}, {"value": "b", "expires_in_days": 10}]),
        now=NOW,
    )
    secrets = world.directory.tenants[0].applications.popitem()[1].secrets
    assert secrets[0].end == datetime(2026, 6, 30, tzinfo=UTC)
    assert secrets[1].end == NOW + timedelta(days=10)


def test_round_trip_through_a_file(tmp_path):
    key = new_rsa_key()
    data = minimal(
        secrets=[{"value": "s3cret"}],
        certificates=[{"pem": certificate_pem(self_signed_certificate(key, "x")), "display_name": "ci"}],
    )
    data["tenants"][0]["groups"] = [
        {"address": "scope@fabrikam.onmicrosoft.com", "members": ["help@fabrikam.onmicrosoft.com"]}
    ]
    original = load_world(data, now=NOW)
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"export{suffix}"
        write_tenant_file(path, dump_world(original.directory, original.settings))
        reloaded = load_tenant_file(path)
        assert dump_world(reloaded.directory, reloaded.settings) == dump_world(original.directory, original.settings)
        assert reloaded.generated_secrets == []


def test_certificate_from_a_file_next_to_the_tenant_file(tmp_path):
    pem = certificate_pem(self_signed_certificate(new_rsa_key(), "daemon"))
    (tmp_path / "daemon.pem").write_text(pem)
    data = minimal(certificates=[{"file": "daemon.pem"}])
    (tmp_path / "tenant.yaml").write_text(yaml.safe_dump(data))
    app = load_tenant_file(tmp_path / "tenant.yaml").directory.tenants[0].applications.popitem()[1]
    assert app.certificates[0].pem == pem


def test_settings_are_read():
    world = load_world({**minimal(), "settings": {"token_lifetime": 900}}, now=NOW)
    assert world.settings.token_lifetime == 900


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenants": []}, "tenants: expected a non-empty list"),
        ({"tenants": [{"domains": []}]}, "tenants[0].domains: expected a non-empty list"),
        ({"tenants": [{"domains": ["localhost"]}]}, "tenants[0].domains: at least one domain name"),
        ({"tenants": [{"domains": ["x.com"], "id": "not-a-guid"}]}, "tenants[0].id: 'not-a-guid' is not a GUID"),
        (
            minimal(permissions=["Mail.Everything"]),
            "tenants[0].applications[0].permissions: unknown Graph application permission 'Mail.Everything'",
        ),
        (
            minimal(admin_consent="yes"),
            "tenants[0].applications[0].admin_consent: expected true or false, got a string",
        ),
        (
            minimal(secrets=[{"value": "x", "expires": "tomorrow"}]),
            "tenants[0].applications[0].secrets[0].expires: 'tomorrow' is not an ISO 8601 date-time",
        ),
        (
            minimal(certificates=[{"pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}]),
            "tenants[0].applications[0].certificates[0]: not a PEM certificate",
        ),
        (
            {"tenants": [{"domains": ["x.com"], "groups": [{"address": "g@x.com", "members": ["ghost@x.com"]}]}]},
            "tenants[0].groups[0]: group g@x.com: member 'ghost@x.com' is not a mailbox or group",
        ),
        (
            {"tenants": [{"domains": ["x.com"], "mailboxes": [{"address": "a@x.com"}, {"address": "A@x.com"}]}]},
            "tenants[0].mailboxes[1]: mailbox a@x.com clashes",
        ),
        (
            {"tenants": [{"domains": ["x.com"], "mailboxes": [{"address": "a@x.com", "type": "room"}]}]},
            "tenants[0].mailboxes[0].type: expected 'user' or 'shared', got 'room'",
        ),
        (
            {"settings": {"token_lifetime": -1}, **minimal()},
            "settings.token_lifetime: expected a whole number from 1 to 31536000, got -1",
        ),
        (
            {"tenants": [{"domains": ["x.com"]}, {"domains": ["X.com"]}]},
            "tenants[1]: tenant id or domain already in use",
        ),
    ],
)
def test_bad_tenant_data_names_the_place(data, message):
    with pytest.raises(ConfigError) as info:
        load_world(data, now=NOW)
    assert message in str(info.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read tenant file"):
        load_tenant_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_tenant_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_tenant_file(tmp_path / "list.yaml")


def test_tenant_file_mail_is_put_into_mailboxes(tmp_path):
    from m365_mock.app import create_app
    from tests.conftest import shared_signing_key

    data = minimal()
    data["tenants"][0]["mailboxes"][0].update(
        {
            "generate": 4,
            "messages": [
                {
                    "subject": "Welcome",
                    "from": "Ann Lee <ann@example.org>",
                    "body": "<p>Hi</p>",
                    "body_type": "html",
                    "received": "2026-02-01T10:00:00Z",
                    "read": True,
                    "folder": "Archive",
                    "categories": ["Blue"],
                },
                {"subject": "Into a new folder", "folder": "Tickets"},
            ],
        }
    )
    world = load_world(data, now=NOW)
    emulator = create_app(world, signing_key=shared_signing_key()).extensions["m365"]
    store = emulator.mail.store(world.directory.tenants[0].mailbox("help@fabrikam.onmicrosoft.com"))
    assert store.well_known["inbox"].total_count == 4
    [welcome] = store.well_known["archive"].all.slice(0, 10)
    assert welcome.subject == "Welcome" and welcome.is_read and welcome.categories == ["Blue"]
    assert welcome.from_ == {"emailAddress": {"name": "Ann Lee", "address": "ann@example.org"}}
    assert welcome.received == datetime(2026, 2, 1, 10, tzinfo=UTC) and welcome.body_type == "html"
    tickets = store.folder_by_name(store.root, "Tickets")
    assert tickets is not None and tickets.total_count == 1


def test_demo_tenant_has_sample_mail():
    from m365_mock.app import create_app
    from tests.conftest import shared_signing_key

    world = load_demo_world()
    emulator = create_app(world, signing_key=shared_signing_key()).extensions["m365"]
    tenant = world.directory.tenants[0]
    support = emulator.mail.store(tenant.mailbox("support@contoso.onmicrosoft.com"))
    assert support.well_known["inbox"].total_count == 13
    newest = support.well_known["inbox"].all.slice(0, 1)[0]
    assert newest.subject == "Order #10423 arrived damaged" and not newest.is_read


@pytest.mark.parametrize(
    ("mailbox_fields", "message"),
    [
        ({"generate": -1}, "tenants[0].mailboxes[0].generate: expected a whole number from 0 to 200000, got -1"),
        (
            {"messages": [{"subject": "x", "colour": "red"}]},
            "tenants[0].mailboxes[0].messages[0].colour: unknown key; known: subject, from,",
        ),
        ({"messages": [{"from": "nobody"}]}, "tenants[0].mailboxes[0].messages[0].from: 'nobody' is not an email"),
        ({"messages": [{"received": "yesterday"}]}, "tenants[0].mailboxes[0].messages[0].received: 'yesterday' is not"),
    ],
)
def test_bad_mailbox_mail(mailbox_fields, message):
    data = minimal()
    data["tenants"][0]["mailboxes"][0].update(mailbox_fields)
    with pytest.raises(ConfigError) as info:
        load_world(data, now=NOW)
    assert message in str(info.value)
