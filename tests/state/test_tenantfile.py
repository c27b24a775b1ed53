"""Tenant files are checked against their JSON Schema: every wrong place is refused with its file, line and path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from m365_mock.identity.keys import certificate_pem, new_rsa_key, self_signed_certificate
from m365_mock.state.tenantfile import ConfigError, load_tenant_file, load_world, read_tenant_file
from m365_mock.state.tenantfile.schema import SCHEMA, SCHEMA_FILE, schema_text

DOMAIN = "fabrikam.onmicrosoft.com"

# A tenant file whose every entry is right; the line numbers below refer to it.
GOOD = f"""\
settings:
  token_lifetime: 900
tenants:
  - name: Fabrikam
    domains: [{DOMAIN}]
    mailboxes:
      - address: helpdesk@{DOMAIN}
        type: shared
        messages:
          - subject: Printer jammed
            received: 2026-05-01T08:00:00Z
      - address: adele@{DOMAIN}
    groups:
      - address: scope@{DOMAIN}
        members: [helpdesk@{DOMAIN}]
    applications:
      - display_name: Ticketing Daemon
        permissions: [Mail.Read]
        secrets:
          - value: s3cret
    access_policies:
      - app_id: Ticketing Daemon
        scope: scope@{DOMAIN}
        access_right: RestrictAccess
"""


def write(tmp_path, text: str, name: str = "tenant.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_tenant_file(path)
    return str(info.value)


def test_schema_json_is_written_from_the_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "run `python -m m365_mock.state.tenantfile.schema` to write schema.json"
    )


def test_every_object_of_the_schema_refuses_other_keys():
    def objects(node):
        if isinstance(node, dict):
            if node.get("type") in ("object", ["object", "null"]) and "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    reusable = {"settings", "mailbox", "group", "application", "secret", "certificate", "accessPolicy"}
    reusable |= {"servicePrincipal", "managementScope", "roleAssignment", "tenant", "message", "mail"}
    assert reusable <= set(SCHEMA["$defs"])
    found = list(objects(SCHEMA))
    assert len(found) >= 13  # the file and every definition (the reserved `mail` may stay open)
    assert all(node["additionalProperties"] is False for node in found)


def test_a_misspelt_key_is_refused_with_file_line_column_and_a_suggestion(tmp_path):
    """`accessPolicies:` (the control API's URL spelling) used to load no policy at all: every mailbox readable."""
    world = load_tenant_file(write(tmp_path, GOOD))
    assert [p.scope_name for p in world.directory.tenants[0].rules.policies] == ["scope"]
    path = write(tmp_path, GOOD.replace("    access_policies:", "    accessPolicies:"))
    assert refusal(path) == f"{path}:21:5: tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  token_lifetime: 900", "  token_lifetim: 900", "2:3: settings.token_lifetim: unknown key; did you mean"),
        ("  - name: Fabrikam", "  - nam: Fabrikam", "4:5: tenants[0].nam: unknown key; did you mean 'name'?"),
        (
            "        type: shared",
            "        kind: shared",
            "8:9: tenants[0].mailboxes[0].kind: unknown key; known: address,",
        ),
        (
            "            received:",
            "            recieved:",
            "11:13: tenants[0].mailboxes[0].messages[0].recieved: unknown key; did you mean 'received'?",
        ),
        (
            "        members:",
            "        member:",
            "15:9: tenants[0].groups[0].member: unknown key; did you mean 'members'?",
        ),
        (
            "        permissions:",
            "        permission:",
            "18:9: tenants[0].applications[0].permission: unknown key; did you mean 'permissions'?",
        ),
        (
            "          - value: s3cret",
            "          - valeu: s3cret",
            "20:13: tenants[0].applications[0].secrets[0].valeu: unknown key; did you mean 'value'?",
        ),
        (
            "        access_right: RestrictAccess",
            "        accessRight: RestrictAccess",
            "24:9: tenants[0].access_policies[0].accessRight: unknown key; did you mean 'access_right'?",
        ),
        ("tenants:", "tenant:", "3:1: tenant: unknown key; did you mean 'tenants'?"),
    ],
)
def test_unknown_keys_are_refused_at_every_level(tmp_path, old, new, message):
    path = write(tmp_path, GOOD.replace(old, new, 1))
    assert f"{path}:{message}" in refusal(path)


def test_the_rule_lists_and_credentials_refuse_unknown_keys_too():
    pem = certificate_pem(self_signed_certificate(new_rsa_key(), "daemon"))
    tenant = {
        "domains": [DOMAIN],
        "applications": [{"display_name": "A", "certificates": [{"pem": pem, "thumbprint": "x"}]}],
        "service_principals": [{"app_id": "A", "objectid": "x"}],
        "management_scopes": [{"name": "s", "filter": "Alias -eq 'a'", "description": "x"}],
        "role_assignments": [{"role": "Application Mail.Read", "app_id": "A", "scopes": "s"}],
    }
    with pytest.raises(ConfigError) as info:
        load_world({"tenants": [tenant], "outbound": []})
    assert str(info.value).splitlines() == [
        "tenants[0].applications[0].certificates[0].thumbprint: unknown key; known: display_name, pem, file, id",
        "tenants[0].service_principals[0].objectid: unknown key; did you mean 'object_id'?",
        "tenants[0].management_scopes[0].description: unknown key; known: name, filter",
        "tenants[0].role_assignments[0].scopes: unknown key; did you mean 'scope'?",
    ]


def test_every_problem_is_reported_in_file_order(tmp_path):
    text = (
        GOOD.replace("    access_policies:", "    accessPolicies:")
        .replace("        type: shared", "        type: room")
        .replace("  token_lifetime: 900", "  token_lifetime: soon")
        .replace("      - address: adele@", "      - adress: adele@")
    )
    path = write(tmp_path, text)
    assert refusal(path).splitlines() == [
        f"{path}:2:3: settings.token_lifetime: expected a whole number, got a string",
        f"{path}:8:9: tenants[0].mailboxes[0].type: expected 'user' or 'shared', got 'room'",
        f"{path}:12:9: tenants[0].mailboxes[1].address: required",
        f"{path}:12:9: tenants[0].mailboxes[1].adress: unknown key; did you mean 'address'?",
        f"{path}:21:5: tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?",
    ]


def test_a_repeated_yaml_key_is_refused_not_silently_replaced(tmp_path):
    path = write(tmp_path, GOOD.replace("        type: shared\n", "        type: shared\n        type: user\n"))
    assert refusal(path) == f"{path}:9:9: tenants[0].mailboxes[0].type: repeated key (first given on line 8)"


def test_json_files_refuse_repeated_and_unknown_keys_with_their_lines(tmp_path):
    text = json.dumps({"tenants": [{"domains": [DOMAIN], "access_policies": []}]}, indent=2)
    text = text.replace('"access_policies"', '"name": "a",\n      "name": "b",\n      "accessPolicies"')
    path = write(tmp_path, text, "tenant.json")
    assert refusal(path).splitlines() == [
        f"{path}:8:7: tenants[0].name: repeated key (first given on line 7)",
        f"{path}:9:7: tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?",
    ]


def test_type_errors_name_the_expected_type():
    data = {
        "tenants": [
            {
                "domains": DOMAIN,
                "mailboxes": [{"address": f"a@{DOMAIN}", "generate": "50", "aliases": "b@x"}],
                "applications": [{"display_name": "A", "admin_consent": "yes", "secrets": {"value": "x"}}],
            }
        ]
    }
    with pytest.raises(ConfigError) as info:
        load_world(data)
    assert str(info.value).splitlines() == [
        "tenants[0].domains: expected a list, got a string",
        "tenants[0].mailboxes[0].generate: expected a whole number, got a string",
        "tenants[0].mailboxes[0].aliases: expected a list, got a string",
        "tenants[0].applications[0].admin_consent: expected true or false, got a string",
        "tenants[0].applications[0].secrets: expected a list, got a mapping",
    ]


def test_the_readers_own_checks_carry_the_line_too(tmp_path):
    path = write(tmp_path, GOOD.replace("  - name: Fabrikam\n", "  - name: Fabrikam\n    id: not-a-guid\n"))
    assert refusal(path) == f"{path}:5:5: tenants[0].id: 'not-a-guid' is not a GUID"


def test_exact_mail_and_the_outbound_log_are_checked_like_the_rest():
    data = {
        "tenants": [{"domains": [DOMAIN], "mailboxes": [{"address": f"a@{DOMAIN}", "mail": {"folders": []}}]}],
        "outbound": [{"subject": "hi"}],
    }
    with pytest.raises(ConfigError) as info:
        load_world(data)
    assert str(info.value).splitlines() == [
        "tenants[0].mailboxes[0].mail.messages: required",
        "tenants[0].mailboxes[0].mail.next_seq: required",
        "outbound[0].sent: required",
        "outbound[0].sender: required",
        "outbound[0].recipients: required",
    ]
    data["tenants"][0]["mailboxes"][0]["mail"] = []
    data["outbound"] = {}
    with pytest.raises(ConfigError) as info:
        load_world(data)
    assert str(info.value).splitlines() == [
        "tenants[0].mailboxes[0].mail: expected a mapping, got a list",
        "outbound: expected a list, got a mapping",
    ]


def test_exact_mail_excludes_seeded_messages():
    box = {"address": f"a@{DOMAIN}", "generate": 3, "mail": {"folders": [], "messages": [], "next_seq": 1}}
    with pytest.raises(ConfigError) as info:
        load_world({"tenants": [{"domains": [DOMAIN], "mailboxes": [box]}]})
    assert str(info.value) == "tenants[0].mailboxes[0].mail: exact mail and 'messages'/'generate' exclude each other"


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        (
            "latin1.yaml",
            "tenants:\n  - name: Café\n".encode("latin-1"),
            ":2: not UTF-8 text (byte 0xe9); save the file",
        ),
        ("utf16.yaml", "tenants: []\n".encode("utf-16"), ": not UTF-8 text: it starts with a UTF-16 byte-order mark"),
        ("deep.yaml", b"tenants: " + b"[" * 5000 + b"]" * 5000, ": nested deeper than 64 levels"),
        ("deep.json", b'{"tenants": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ": nested deeper than 64 levels"),
        ("fairly-deep.yaml", b"tenants: " + b"[" * 70 + b"]" * 70, ": nested deeper than 64 levels"),
        (
            "laughs.yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n".encode() for i in range(6)
            ),
            ": its aliases expand to more than 100000 further entries",
        ),
        ("loop.yaml", b"tenants: &t [*t]\n", ": an alias refers to the entry that holds it"),
        ("syntax.yaml", b"tenants:\n  - a: 1\n   b: 2\n", ":3:4: not valid YAML: expected <block end>, but found"),
        ("syntax.json", b'{"tenants": [1,]}', ":1:16: not valid JSON: Expecting value"),
    ],
)
def test_unreadable_files_are_refused_in_one_line(tmp_path, name, raw, reason):
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        read_tenant_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}{reason}") and "\n" not in message


def test_data_from_the_control_api_never_names_a_file_to_read(tmp_path):
    pem = tmp_path / "daemon.pem"
    pem.write_text(certificate_pem(self_signed_certificate(new_rsa_key(), "daemon")))
    messages = set()
    for file in (str(pem), str(tmp_path / "missing.pem")):
        data = {"tenants": [{"domains": [DOMAIN], "applications": [{"display_name": "A", "certificates": []}]}]}
        data["tenants"][0]["applications"][0]["certificates"] = [{"file": file}]
        with pytest.raises(ConfigError) as info:
            load_world(data)
        messages.add(str(info.value))
    assert messages == {
        "tenants[0].applications[0].certificates[0].file: the control API reads no files; give the certificate as 'pem'"
    }


def test_serve_refuses_a_misspelt_tenant_file_before_serving(tmp_path):
    bad = write(tmp_path, GOOD.replace("    access_policies:", "    accessPolicies:"), "bad.yaml")
    command = ["serve", "--config", str(bad), "--state-dir", str(tmp_path / "state"), "--port", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "m365_mock", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"m365-mock: {bad}:21:5: tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?\n"
    )
