"""`m365-mock exo`: Exchange Online PowerShell lines run against the emulator through its control API.

Most tests run in-process: the shell's ControlClient talks to the Flask test client (the control client's
FlaskSession). The slow ones start the real served emulator and run `python -m m365_mock exo` as a subprocess.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from m365_mock import cli
from m365_mock.state.policies import scope_sid
from m365_mock.tools.control_client import ControlClient, FlaskSession
from m365_mock.tools.exo import Shell, ShellSyntaxError, interactive, main, parse, run, tokenize
from m365_mock.tools.process import start_emulator
from tests.helpers import ADMIN_KEY

DOMAIN = "contoso.onmicrosoft.com"
GROUP = f"cctr_sec_group@{DOMAIN}"
OTHER_APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

# The command of the task brief, verbatim (backticks included); {app} is the demo app's id.
RUNBOOK = """New-ApplicationAccessPolicy `
  -AppId "{app}" `
  -PolicyScopeGroupId "cctr_sec_group@contoso.onmicrosoft.com" `
  -AccessRight RestrictAccess `
  -Description "Restrict this app to members of distribution group cctr_sec_group"
"""

# The command of /work/shared/reference/admin-runbook.txt, verbatim: its AppId, its placeholder domain, its `;`.
ADMIN_RUNBOOK_TXT = """New-ApplicationAccessPolicy `
  -AppId "e7e4dbfc-046f-4074-9b3b2ae8f144f59b" `
  -PolicyScopeGroupId "cctr_sec_group@your_tenant.com" `
  -AccessRight RestrictAccess `
  -Description "Restrict this app to members of distribution group cctr_sec_group@your_tenant.com";
"""


@pytest.fixture
def control(app) -> ControlClient:
    return ControlClient("https://localhost", ADMIN_KEY, session=FlaskSession(app.test_client()))


@pytest.fixture
def exo(control):
    """Run PowerShell text; (exit status, stdout, stderr)."""

    def run_exo(text: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = run(text, control, out, err)
        return status, out.getvalue(), err.getvalue()

    return run_exo


@pytest.fixture
def app_id(demo_app) -> str:
    return demo_app.app_id


def policies(control: ControlClient) -> list[dict[str, Any]]:
    return control.access_policies()


def policy_output(policy: dict[str, Any], group_id: str, name: str = "cctr_sec_group") -> str:
    sid = scope_sid(group_id)
    return (
        f"ScopeName        : {name}\n"
        f"ScopeIdentity    : {name}\n"
        f"Identity         : {policy['id']}\\{policy['app_id'][0]}:{sid};{group_id}\n"
        f"AppId            : {policy['app_id'][0]}\n"
        f"ScopeIdentityRaw : {sid};{group_id}\n"
        f"Description      : {policy['description']}\n"
        f"AccessRight      : {policy['access_right']}\n"
        "ShardType        : All\n"
        "IsValid          : True\n"
        "ObjectState      : Unchanged\n"
        "\n"
    )


def test_output(app_id: str, tenant, local: str, result: str) -> str:
    mailbox = tenant.mailbox(f"{local}@{DOMAIN}")
    return (
        f"AppId             : {app_id}\n"
        f"Mailbox           : {local}\n"
        f"MailboxId         : {mailbox.id}\n"
        f"MailboxSid        : {scope_sid(mailbox.id)}\n"
        f"AccessCheckResult : {result}\n"
        "\n"
    )


test_output.__test__ = False  # a helper, not a test


# ---------------------------------------------------------------- the runbook


def test_runbook_command_verbatim_restricts_the_app(exo, control, tenant, app_id):
    status, out, err = exo(RUNBOOK.format(app=app_id))
    [policy] = policies(control)
    group = tenant.group(GROUP)
    assert (status, err) == (0, "")
    assert out == policy_output(policy, group.id)
    assert policy["app_id"] == [app_id] and policy["scope"] == GROUP and policy["access_right"] == "RestrictAccess"
    assert policy["description"] == "Restrict this app to members of distribution group cctr_sec_group"

    status, out, err = exo(
        f"Test-ApplicationAccessPolicy -Identity support@{DOMAIN} -AppId {app_id}\n"
        f"Test-ApplicationAccessPolicy -Identity sales@{DOMAIN} -AppId {app_id}\n"
    )
    assert (status, err) == (0, "")
    assert out == test_output(app_id, tenant, "support", "Granted") + test_output(app_id, tenant, "sales", "Denied")


def test_admin_runbook_txt_command_verbatim(exo, control):
    """The vendor's command as printed: it parses (backticks, trailing `;`), but its sample AppId is not a GUID
    (a hyphen is missing) and its placeholder group does not exist; the AppId is refused first."""
    status, out, err = exo(ADMIN_RUNBOOK_TXT)
    assert (status, out) == (1, "")
    assert err == (
        "New-ApplicationAccessPolicy : The AppId 'e7e4dbfc-046f-4074-9b3b2ae8f144f59b' isn't valid: give "
        "application ids (GUIDs) or *.\n"
    )
    assert policies(control) == []


def test_runbook_from_a_windows_file(tmp_path, control, tenant, app_id):
    """Saved by Windows PowerShell ISE or Notepad: a byte order mark and CRLF line ends."""
    script = tmp_path / "runbook.ps1"
    text = RUNBOOK.format(app=app_id) + f"Test-ApplicationAccessPolicy sales -AppId {app_id}\n"
    script.write_text(text, "utf-8-sig", newline="\r\n")
    assert script.read_bytes().startswith(b"\xef\xbb\xbfNew-ApplicationAccessPolicy `\r\n")
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(text=None, file=str(script), url=None, admin_key=None, ca_file=None, tenant=None)
    status = main(args, stdin=io.StringIO(), out=out, err=err, client=control)
    [policy] = policies(control)
    assert (status, err.getvalue()) == (0, "")
    assert out.getvalue() == policy_output(policy, tenant.group(GROUP).id) + test_output(
        app_id, tenant, "sales", "Denied"
    )


# ---------------------------------------------------------------- syntax


def test_named_colon_values_prefixes_and_case(exo, control, app_id):
    status, out, err = exo(
        f"new-applicationaccesspolicy -app:{app_id} -POL:cctr_sec_group -acc:denyaccess -desc:'colon form' | Out-Null"
    )
    assert (status, out) == (1, "")
    assert err == (
        "Out-Null : Piping into 'Out-Null' is not supported by m365-mock: after | use Format-List (fl), "
        "Format-Table (ft) or Select-Object (select).\n"
    )
    assert policies(control) == []
    status, out, err = exo(f"new-applicationaccesspolicy -app:{app_id} -POL:cctr_sec_group -acc:denyaccess -desc:x")
    [policy] = policies(control)
    assert (status, err) == (0, "")
    assert (policy["access_right"], policy["description"], policy["scope"]) == ("DenyAccess", "x", GROUP)


def test_quoting(exo, control, app_id):
    status, _, err = exo(
        f"New-ApplicationAccessPolicy -AppId '{app_id}' -PolicyScopeGroupId cctr_sec_group -AccessRight "
        'RestrictAccess -Description "It\'s `"quoted`", ""doubled"", `$5 and tab`there" ; '
        "Set-ApplicationAccessPolicy (Get-Nothing)"
    )
    assert status == 1
    assert err.startswith("ParserError: line 1, char ")
    assert err.endswith("Sub-expressions in parentheses ( ) are not supported by m365-mock; write the value itself.\n")
    assert policies(control) == []  # a syntax error anywhere runs nothing

    status, out, err = exo(
        f"New-ApplicationAccessPolicy -AppId '{app_id}' -PolicyScopeGroupId cctr_sec_group -AccessRight "
        'RestrictAccess -Description "It\'s `"quoted`", ""doubled"", `$5 and tab`there" | select Description'
    )
    assert (status, err) == (0, "")
    assert out == 'Description\n-----------\nIt\'s "quoted", "doubled", $5 and tab\there\n\n'
    assert policies(control)[0]["description"] == 'It\'s "quoted", "doubled", $5 and tab\there'
    status, _, err = exo(
        "Set-ApplicationAccessPolicy -Identity " + policies(control)[0]["id"] + " -Description 'it''s'"
    )
    assert (status, err) == (0, "")
    assert policies(control)[0]["description"] == "it's"


def test_parse_words_and_lists():
    [statement] = parse("Do-It a,'b c' @(\"d\"\n'e') -X:$true -Y bare` word x'y'z")
    [command] = statement.pipeline
    shell = Shell(None, io.StringIO(), io.StringIO())  # type: ignore[arg-type]
    values = [shell.evaluate(e) if not hasattr(e, "colon") else (e.name, e.colon) for e in command.elements]
    assert command.name == "Do-It"
    assert values[:3] == [["a", "b c"], ["d", "e"], ("X", True)]
    assert values[3:] == [("Y", False), "bare word", "xyz"]
    assert [[t.kind for t in s] for s in tokenize("A -b c | fl; B\n\n# note\nC `\n  -d")] == [
        ["word", "param", "word", "pipe", "word"],
        ["word"],
        ["word", "param"],
    ]


def test_comments_blank_lines_and_semicolons(exo, control, tenant, app_id):
    script = f"""
# Restrict the connector to the security group
<# a block comment
   over two lines #>

New-ApplicationAccessPolicy -AppId {app_id} `
    -PolicyScopeGroupId {GROUP} -AccessRight RestrictAccess -Description x | Select-Object AccessRight ; ;
Test-ApplicationAccessPolicy billing -AppId {app_id} | fl AccessCheckResult; Get-ApplicationAccessPolicy | ft ScopeName
"""
    status, out, err = exo(script)
    assert (status, err) == (0, "")
    assert out == (
        "AccessRight\n-----------\nRestrictAccess\n\n"
        "AccessCheckResult : Granted\n\n"
        "ScopeName\n---------\ncctr_sec_group\n\n"
    )
    assert len(policies(control)) == 1


def test_lists_arrays_variables_and_pasted_typography(exo, control, app_id):
    status, out, err = exo(
        f'$app = "{app_id}"\n'
        f"$apps = $app, '{OTHER_APP}'\n"
        "New-ApplicationAccessPolicy \u2013AppId $apps \u2013PolicyScopeGroupId \u201ccctr_sec_group\u201d "
        "\u2013AccessRight RestrictAccess \u2013Description \u2018for $app\u2019 | Out-Null\n"
        f"New-ApplicationAccessPolicy -AppId @(\n  '{app_id}'\n  '{OTHER_APP}'\n) -PolicyScopeGroupId "
        f'{GROUP} -AccessRight DenyAccess -Description "for $app" -WhatIf:$false -Confirm:$false | select AppId\n'
    )
    [policy] = policies(control)
    assert status == 1
    assert err.startswith("Out-Null : Piping into 'Out-Null' is not supported")
    assert out == "AppId\n-----\n{" + f"{app_id}, {OTHER_APP}" + "}\n\n"
    assert policy["app_id"] == [app_id, OTHER_APP] and policy["description"] == f"for {app_id}"


def test_whatif_and_common_parameters(exo, control, app_id):
    status, out, err = exo(
        f"New-ApplicationAccessPolicy -AppId {app_id},{OTHER_APP} -PolicyScopeGroupId {GROUP} "
        "-AccessRight RestrictAccess -WhatIf -ErrorAction Stop -Verbose\n"
        "Get-ApplicationAccessPolicy -ea SilentlyContinue -OutVariable x\n"
        "Get-ApplicationAccessPolicy -WhatIf"
    )
    assert status == 1
    assert out == (
        f'What if: Performing the operation "New-ApplicationAccessPolicy" on target "{app_id}, {OTHER_APP}".\n'
    )
    assert err == "Get-ApplicationAccessPolicy : A parameter cannot be found that matches parameter name 'WhatIf'.\n"
    assert policies(control) == []


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('Get-Mailbox "support', 'ParserError: line 1, char 13: The string is missing the terminator: ".'),
        ("Get-Mailbox `\n  'sup", "ParserError: line 2, char 3: The string is missing the terminator: '."),
        (
            "Get-Mailbox `",
            "ParserError: line 1, char 13: The line continuation character (`) at the end of the input "
            "has no line to continue.",
        ),
        ("<# never closed", "ParserError: line 1, char 1: The block comment is missing the terminator: #>."),
        (
            'New-ApplicationAccessPolicy -AppId "<app id>"\nNew-ServicePrincipal -AppId <app id>',
            "ParserError: line 2, char 29: The '<' operator is reserved for future use.",
        ),
        ("Get-Mailbox |", "ParserError: line 1, char 14: An empty pipe element is not allowed."),
        ("Get-Mailbox -Identity a,", "ParserError: line 1, char 25: Missing expression after ','."),
        (
            "$x = Get-Mailbox",
            "ParserError: line 1, char 1: m365-mock assigns only values ('text', \"text\", "
            "numbers, $variables and lists of them) to a variable, not the output of a command such as 'Get-Mailbox'.",
        ),
        (
            '"Get-Mailbox"',
            "ParserError: line 1, char 1: m365-mock runs cmdlets: a statement must start with a "
            'cmdlet name, not "Get-Mailbox".',
        ),
    ],
)
def test_syntax_errors(exo, text, message):
    assert exo(text) == (1, "", message + "\n")


PASTED_RUNBOOK = RUNBOOK.replace("New-ApplicationAccessPolicy `\n", "New-ApplicationAccessPolicy `  \n")


def test_backtick_followed_by_spaces_ends_the_statement(exo, control, app_id):
    """Pasted from a PDF, the runbook's first line ends with a backtick and two spaces. PowerShell reads the
    backtick as escaping a space, so the statement ends on line 1 without its mandatory parameters, and line 2
    starts a command named '-AppId'. Nothing is created; each error carries a hint naming line 1."""
    status, out, err = exo(PASTED_RUNBOOK.format(app=app_id))
    assert (status, out) == (1, "")
    assert err == (
        "New-ApplicationAccessPolicy : Cannot process command because of one or more missing mandatory parameters: "
        "AccessRight AppId PolicyScopeGroupId.\n"
        "Hint: line 1 ends with a backtick followed by spaces, so the statement ends there: a backtick continues a "
        "line only as its last character, and here it escapes the space after it. Delete the spaces after that "
        "backtick (text pasted from a PDF often carries them).\n"
        "-AppId : The term '-AppId' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program.\n"
        "Hint: line 2 starts a statement of its own, because line 1 ends with a backtick followed by spaces. Delete "
        "the spaces after that backtick (text pasted from a PDF often carries them).\n"
    )
    assert policies(control) == []
    # At the end of the input, too, a backtick and spaces are only spaces.
    assert exo("Get-Mailbox -RecipientTypeDetails SharedMailbox `  \n\n") == (0, SHARED_TABLE, "")


def test_backtick_followed_by_spaces_is_an_escaped_space():
    """As PowerShell's tokenizer: between tokens a backtick and a space are a space; inside a bare word they are an
    escaped space; only a backtick that is the last character of its line continues the statement."""
    assert [[t.text for t in s] for s in tokenize("A `  \n  -b c\nA ` b\nA x`  \nA 'y'` \nA `\n  -b")] == [
        ["A"],
        ["b", "c"],
        ["A", "b"],
        ["A", "x` "],
        ["A", "'y'"],
        ["A", "b"],
    ]
    [first, second, third, fourth, fifth, last] = parse("A `  \n  -b c\nA ` b\nA x`  \nA 'y'` \nA `\n  -b")
    assert (first.pipeline[0].name, first.dangling, second.pipeline[0].name, second.after_dangling) == (
        "A",
        1,
        "-b",
        1,
    )
    shell = Shell(None, io.StringIO(), io.StringIO())  # type: ignore[arg-type]
    assert [shell.evaluate(s.pipeline[0].elements[0]) for s in (fourth, fifth)] == ["x ", "y"]
    assert (third.dangling, fourth.dangling, fifth.dangling, last.dangling) == (None, 4, 5, None)
    assert [s.after_dangling for s in (third, fourth, fifth, last)] == [None, None, 4, 5]


def test_a_line_that_starts_with_a_parameter_is_a_command_of_its_own(exo, control, app_id):
    """A missing backtick: PowerShell runs the first line alone and takes '-AccessRight' for a command name."""
    status, out, err = exo(
        f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId {GROUP}\n  -AccessRight RestrictAccess"
    )
    assert (status, out) == (1, "")
    assert err == (
        "New-ApplicationAccessPolicy : Cannot process command because of one or more missing mandatory parameters: "
        "AccessRight.\n"
        "-AccessRight : The term '-AccessRight' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program.\n"
        "Hint: a statement can't start with a parameter: is the line continuation (`) missing at the end of line 1?\n"
    )
    assert policies(control) == []
    assert exo("Get-Mailbox sales | select -ExpandProperty Alias; -Identity x") == (  # after `;`: no hint
        1,
        "sales\n",
        "-Identity : The term '-Identity' is not recognized as the name of a cmdlet, function, script file, or "
        "operable program.\n",
    )


def test_incomplete_input_is_marked():
    for text, incomplete in (("Get-Mailbox `", True), ("A 'x", True), ("A |", True), ("A <", False)):
        with pytest.raises(ShellSyntaxError) as caught:
            parse(text)
        assert caught.value.incomplete is incomplete


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "New-Foo -Bar 1",
            "New-Foo : The term 'New-Foo' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program.",
        ),
        (
            "New-ApplicationAccessPolicy -Colour red",
            "New-ApplicationAccessPolicy : A parameter cannot be found that matches parameter name 'Colour'.",
        ),
        (
            "New-ApplicationAccessPolicy -A x",
            "New-ApplicationAccessPolicy : Parameter cannot be processed because the parameter name 'A' is "
            "ambiguous. Possible matches include: -AccessRight -AppId.",
        ),
        (
            "Set-Mailbox support -Custom x",
            "Set-Mailbox : Parameter cannot be processed because the parameter name 'Custom' is ambiguous. "
            "Possible matches include: " + " ".join(f"-CustomAttribute{n}" for n in range(1, 16)) + ".",
        ),
        (
            f"New-ApplicationAccessPolicy -AppId {OTHER_APP} -PolicyScopeGroupId {GROUP}",
            "New-ApplicationAccessPolicy : Cannot process command because of one or more missing mandatory "
            "parameters: AccessRight.",
        ),
        (
            "New-ApplicationAccessPolicy",
            "New-ApplicationAccessPolicy : Cannot process command because of one or more missing mandatory "
            "parameters: AccessRight AppId PolicyScopeGroupId.",
        ),
        (
            f"New-ApplicationAccessPolicy -PolicyScopeGroupId {GROUP} -AccessRight RestrictAccess -AppId",
            "New-ApplicationAccessPolicy : Missing an argument for parameter 'AppId'. Specify a parameter of type "
            "'System.String[]' and try again.",
        ),
        (
            f"New-ApplicationAccessPolicy -Description -AppId {OTHER_APP}",
            "New-ApplicationAccessPolicy : Missing an argument for parameter 'Description'. Specify a parameter of "
            "type 'System.String' and try again.",
        ),
        (
            f"New-ApplicationAccessPolicy -AppId {OTHER_APP} -PolicyScopeGroupId support@{DOMAIN} "
            "-AccessRight RestrictAccess",
            "New-ApplicationAccessPolicy : The identity of the policy scope is not a security principal.",
        ),
        (
            f"New-ApplicationAccessPolicy -AppId not-a-guid -PolicyScopeGroupId {GROUP} -AccessRight RestrictAccess",
            # The control API's message (a tenant-file path leaks into it); see the module docs.
            "New-ApplicationAccessPolicy : The AppId 'not-a-guid' isn't valid: give application ids (GUIDs) or *.",
        ),
        (
            f"New-ApplicationAccessPolicy -AppId {OTHER_APP} -PolicyScopeGroupId {GROUP} -AccessRight Maybe",
            "New-ApplicationAccessPolicy : The AccessRight 'Maybe' isn't valid: use RestrictAccess or DenyAccess.",
        ),
        (
            "Get-ApplicationAccessPolicy one two",
            "Get-ApplicationAccessPolicy : A positional parameter cannot be found that accepts argument 'two'.",
        ),
        (
            "Get-Mailbox -Identity a -Identity b",
            "Get-Mailbox : Cannot bind parameter because parameter 'Identity' is specified more than once. To "
            "provide multiple values to parameters that can accept multiple values, use the array syntax. For "
            'example, "-parameter value1,value2,value3".',
        ),
        (
            "New-Mailbox -Name x -Shared:yes",
            "New-Mailbox : Cannot convert 'System.String' to the type "
            "'System.Management.Automation.SwitchParameter' required by parameter 'Shared'.",
        ),
        (
            "Set-ApplicationAccessPolicy -Identity x -Description a,b",
            "Set-ApplicationAccessPolicy : Cannot convert 'System.Object[]' to the type 'System.String' required "
            "by parameter 'Description'. Specified method is not supported.",
        ),
        (
            "Get-Mailbox -Identity $mailbox",
            "Get-Mailbox : The variable '$mailbox' cannot be retrieved because it has not been set.",
        ),
        ("$true = 1", "Cannot overwrite variable true because it is read-only or constant."),
        (
            "Get-Mailbox nobody",
            "Get-Mailbox : The operation couldn't be performed because object 'nobody' couldn't be found.",
        ),
        (
            "Remove-ApplicationAccessPolicy 6f1c1d1e-0000-4000-8000-000000000000",
            "Remove-ApplicationAccessPolicy : The operation couldn't be performed because object "
            "'6f1c1d1e-0000-4000-8000-000000000000' couldn't be found.",
        ),
        (
            "New-ManagementRoleAssignment -Role 'Application Mail.Read' -User someone",
            "New-ManagementRoleAssignment : m365-mock does not support the parameter 'User': m365-mock emulates "
            "role assignments to applications (-App) only.",
        ),
    ],
)
def test_statement_errors(exo, control, text, message):
    assert exo(text) == (1, "", message + "\n")
    assert policies(control) == []


def test_a_failed_statement_does_not_stop_the_next(exo, control, app_id):
    status, out, err = exo(
        f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId sales -AccessRight RestrictAccess\n"
        f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId cctr_sec_group -AccessRight RestrictAccess "
        "| select AccessRight"
    )
    assert status == 1
    assert err == "New-ApplicationAccessPolicy : The identity of the policy scope is not a security principal.\n"
    assert out == "AccessRight\n-----------\nRestrictAccess\n\n"
    assert [p["scope"] for p in policies(control)] == [GROUP]


# ---------------------------------------------------------------- application access policies


def test_get_set_remove_application_access_policy(exo, control, tenant, app_id):
    assert exo("Get-ApplicationAccessPolicy") == (0, "", "")
    exo(f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId cctr_sec_group -AccessRight RestrictAccess")
    [policy] = policies(control)
    sid = scope_sid(tenant.group(GROUP).id)
    assert policy["description"] == (
        f"AppId: {app_id}; ScopeIdentitySid: {sid}; ScopeIdentityOid: {tenant.group(GROUP).id}; "
        "AccessRight: RestrictAccess; ShardType: All"
    )
    identity = f"{policy['id']}\\{app_id}:{sid};{tenant.group(GROUP).id}"

    status, out, err = exo(f"Set-ApplicationAccessPolicy -Identity '{identity}' -Description 'Contact centre only'")
    assert (status, out, err) == (0, "", "")
    [policy] = policies(control)
    assert policy["description"] == "Contact centre only"
    assert exo(f"Get-ApplicationAccessPolicy {policy['id']}") == (0, policy_output(policy, tenant.group(GROUP).id), "")
    assert exo(f"Set-ApplicationAccessPolicy {policy['id']}") == (
        0,
        "",
        f"WARNING: The command completed successfully but no settings of '{policy['id']}' have been modified.\n",
    )
    assert exo(f"Remove-ApplicationAccessPolicy '{identity}' -WhatIf") == (
        0,
        f'What if: Performing the operation "Remove-ApplicationAccessPolicy" on target "{identity}".\n',
        "",
    )
    assert len(policies(control)) == 1
    assert exo(f"Remove-ApplicationAccessPolicy {policy['id']} -Confirm:$false") == (0, "", "")
    assert policies(control) == []
    assert exo(f"Test-ApplicationAccessPolicy sales -AppId {app_id}") == (
        0,
        test_output(app_id, tenant, "sales", "Granted"),
        "",
    )


def test_test_application_access_policy_names_and_reasons(exo, tenant, app_id):
    exo(f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId cctr_sec_group -AccessRight DenyAccess")
    status, out, err = exo(f"Test-ApplicationAccessPolicy 'Customer Support' -AppId {app_id.upper()} -vb")
    assert status == 0
    assert out == test_output(app_id, tenant, "support", "Denied")
    assert err.splitlines()[-1].startswith("VERBOSE: m365-mock: DenyAccess policy ")
    assert exo(f"Test-ApplicationAccessPolicy nobody -AppId {app_id}") == (
        1,
        "",
        "Test-ApplicationAccessPolicy : The operation couldn't be performed because object 'nobody' couldn't be "
        "found.\n",
    )


def test_app_ids_are_guids_never_display_names(exo, control, app_id, demo_app):
    """Exchange takes only application ids (or * where the cmdlet allows it); the control API and tenant files
    also resolve display names, so a runbook written with an app's name must fail here as it would there."""
    control.add_application("Second Daemon")
    scope = f"-PolicyScopeGroupId {GROUP} -AccessRight RestrictAccess"
    assert exo(f"New-ApplicationAccessPolicy -AppId 'Second Daemon' {scope}") == (
        1,
        "",
        "New-ApplicationAccessPolicy : The AppId 'Second Daemon' isn't valid: give application ids (GUIDs) or *.\n",
    )
    assert exo(f"New-ApplicationAccessPolicy -AppId {app_id},'Contact Center Connector' {scope}")[2] == (
        "New-ApplicationAccessPolicy : The AppId 'Contact Center Connector' isn't valid: give application ids "
        "(GUIDs) or *.\n"
    )
    assert policies(control) == []
    for name in ("'Second Daemon'", "'Contact Center Connector'", "*"):
        shown = name.strip("'")
        assert exo(f"Test-ApplicationAccessPolicy support -AppId {name}") == (
            1,
            "",
            f"Test-ApplicationAccessPolicy : The AppId '{shown}' isn't valid: give an application id (GUID).\n",
        )
    assert exo(f"New-ServicePrincipal -AppId 'Contact Center Connector' -ObjectId {demo_app.service_principal_id}") == (
        1,
        "",
        "New-ServicePrincipal : The AppId 'Contact Center Connector' isn't valid: give an application id (GUID).\n",
    )
    assert control.service_principals() == []

    status, out, err = exo(f"New-ApplicationAccessPolicy -AppId * {scope} | select AppId")
    assert (status, out, err) == (0, "AppId\n-----\n*\n\n", "")


def group_test_output(app_id: str, group: dict[str, Any], result: str) -> str:
    return (
        f"AppId             : {app_id}\n"
        f"Mailbox           : {group['address'].split('@')[0]}\n"
        f"MailboxId         : {group['id']}\n"
        f"MailboxSid        : {scope_sid(group['id'])}\n"
        f"AccessCheckResult : {result}\n"
        "\n"
    )


def test_test_application_access_policy_for_a_group(exo, control, app_id):
    """The cmdlet's documented Example 1 tests a group ("Engineering Staff"). A group is tested as one recipient:
    covered when a policy's scope is the group itself or a group that contains it.
    Needs POST /_m365/tenants/{t}/accessPolicies/test to take `recipient` (a mailbox or a group)."""
    status, _, err = exo(
        "New-DistributionGroup -Name 'Engineering Staff' -Alias engineering -Type Security -Members sales\n"
        f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId cctr_sec_group -AccessRight RestrictAccess"
    )
    assert (status, err) == (0, "")
    scope, engineering = (control.group(f"{name}@{DOMAIN}") for name in ("cctr_sec_group", "engineering"))
    assert exo(f"Test-ApplicationAccessPolicy -Identity cctr_sec_group -AppId {app_id}") == (
        0,
        group_test_output(app_id, scope, "Granted"),
        "",
    )
    assert exo(f'Test-ApplicationAccessPolicy -Identity "Engineering Staff" -AppID {app_id}') == (
        0,
        group_test_output(app_id, engineering, "Denied"),
        "",
    )
    exo("Add-DistributionGroupMember cctr_sec_group -Member engineering")
    assert exo(f"Test-ApplicationAccessPolicy engineering@{DOMAIN} -AppId {app_id} | select AccessCheckResult") == (
        0,
        "AccessCheckResult\n-----------------\nGranted\n\n",
        "",
    )
    assert exo(f"Test-ApplicationAccessPolicy 'Engineering Staff' -AppId {OTHER_APP} | select AccessCheckResult") == (
        0,
        "AccessCheckResult\n-----------------\nGranted\n\n",
        "",
    )


# ---------------------------------------------------------------- mailboxes and groups


SHARED_TABLE = (
    "Name             Alias   RecipientTypeDetails PrimarySmtpAddress\n"
    "----             -----   -------------------- ------------------\n"
    "Customer Support support SharedMailbox        support@contoso.onmicrosoft.com\n"
    "Sales            sales   SharedMailbox        sales@contoso.onmicrosoft.com\n"
    "Billing          billing SharedMailbox        billing@contoso.onmicrosoft.com\n"
    "\n"
)


def test_get_mailbox(exo, tenant):
    assert exo("Get-Mailbox -RecipientTypeDetails SharedMailbox") == (0, SHARED_TABLE, "")
    assert exo("Get-Mailbox -ResultSize 1 | ft Name,Alias") == (
        0,
        "Name             Alias\n----             -----\nCustomer Support support\n\n",
        "",
    )
    users = [m for m in tenant.mailboxes.values() if m.kind == "user"]
    status, out, _ = exo("Get-Mailbox -RecipientTypeDetails UserMailbox -ResultSize Unlimited | select -Expand Alias")
    assert (status, out) == (0, "".join(m.address.split("@")[0] + "\n" for m in users))
    assert exo("Get-Mailbox -RecipientTypeDetails RoomMailbox") == (
        1,
        "",
        "Get-Mailbox : Cannot bind parameter 'RecipientTypeDetails': m365-mock has UserMailbox and SharedMailbox "
        "mailboxes, not 'roommailbox'.\n",
    )


def test_new_mailbox_and_set_mailbox(exo, control):
    status, out, err = exo('New-Mailbox -Shared -Name "Help Desk" -DisplayName "Help Desk Team"')
    assert (status, err) == (0, "")
    assert out == (
        "Name           Alias    RecipientTypeDetails PrimarySmtpAddress\n"
        "----           -----    -------------------- ------------------\n"
        "Help Desk Team helpdesk SharedMailbox        helpdesk@contoso.onmicrosoft.com\n"
        "\n"
    )
    status, out, err = exo("New-Mailbox -Name Alex -Alias alex.w -PrimarySmtpAddress alex@contoso.com")
    assert (status, err) == (0, "")
    assert out.splitlines()[2] == "Alex alex  UserMailbox          alex@contoso.com"
    assert exo("New-Mailbox -Name Alex -Alias alex.w -PrimarySmtpAddress alex@contoso.com")[2] == (
        "New-Mailbox : mailbox alex@contoso.com clashes with an existing id or address ['alex@contoso.com']\n"
    )

    assert exo("Set-Mailbox helpdesk -CustomAttribute1 'Tier 1' -CustomAttribute15:x") == (0, "", "")
    assert control.mailbox("helpdesk@contoso.onmicrosoft.com")["custom_attributes"] == {
        "1": "Tier 1",
        "15": "x",
    }
    assert exo(
        "Set-Mailbox 'Help Desk Team' -CustomAttribute15 $null; Get-Mailbox helpdesk | fl CustomAttribute1*"
    ) == (
        0,
        "CustomAttribute1  : Tier 1\n"
        "CustomAttribute10 :\n"
        "CustomAttribute11 :\n"
        "CustomAttribute12 :\n"
        "CustomAttribute13 :\n"
        "CustomAttribute14 :\n"
        "CustomAttribute15 :\n"
        "\n",
        "",
    )
    assert control.mailbox("helpdesk@contoso.onmicrosoft.com")["custom_attributes"] == {"1": "Tier 1"}
    assert exo("Remove-Mailbox helpdesk -Confirm:$false") == (0, "", "")
    assert exo("Get-Mailbox helpdesk")[0] == 1


def test_a_name_no_alias_can_be_made_from_needs_an_alias_or_an_address(exo, control):
    refusal = "An alias can't be made from the name '日本'; give -Alias or -PrimarySmtpAddress."
    assert exo("New-Mailbox -Name 日本") == (1, "", f"New-Mailbox : {refusal}\n")
    assert exo("New-DistributionGroup -Name 日本 -Type Security") == (1, "", f"New-DistributionGroup : {refusal}\n")
    status, _, err = exo(
        "New-Mailbox -Name 日本 -PrimarySmtpAddress nihon@contoso.onmicrosoft.com; "
        "New-Mailbox -Name 日本 -Alias tokyo; "
        "New-DistributionGroup -Name 日本 -Type Security -PrimarySmtpAddress nihon-team@contoso.onmicrosoft.com"
    )
    assert (status, err) == (0, "")
    addresses = {m["address"] for m in control.mailboxes()}
    assert {"nihon@contoso.onmicrosoft.com", "tokyo@contoso.onmicrosoft.com"} <= addresses


def test_addresses_outside_the_accepted_domains_are_refused(exo, control):
    """Exchange Online refuses an address in a domain the organisation hasn't accepted. The check is the
    directory's (tenant files, the control API and the cmdlets share it); the shell shows its message after the
    cmdlet's name. These assertions need that check in state/directory.py."""
    refusal = "You can't use the domain fabrikam.com because it's not an accepted domain for your organization."
    assert exo("New-Mailbox -Name Alex -PrimarySmtpAddress alex@fabrikam.com") == (1, "", f"New-Mailbox : {refusal}\n")
    assert exo("New-Mailbox -Shared -Name Desk -MicrosoftOnlineServicesID desk@fabrikam.com") == (
        1,
        "",
        f"New-Mailbox : {refusal}\n",
    )
    assert exo("New-DistributionGroup -Name Partners -Type Security -PrimarySmtpAddress partners@fabrikam.com") == (
        1,
        "",
        f"New-DistributionGroup : {refusal}\n",
    )
    addresses = [m["address"] for m in control.mailboxes()]
    addresses += [g["address"] for g in control.groups()]
    assert not [a for a in addresses if a.endswith("@fabrikam.com")]
    # Both of the tenant's domains are accepted.
    status, _, err = exo(
        "New-Mailbox -Name Alex -PrimarySmtpAddress alex@contoso.com; "
        "New-DistributionGroup -Name Partners -Type Security -PrimarySmtpAddress partners@contoso.onmicrosoft.com"
    )
    assert (status, err) == (0, "")


def test_security_group_as_the_policy_scope_for_shared_mailboxes(exo, control, tenant, app_id):
    """The documented way to scope shared mailboxes: put them in a mail-enabled security group."""
    status, out, err = exo(
        "New-DistributionGroup -Name 'Sales scope' -Alias sales_scope -Type Security -Members sales,billing@contoso.com"
    )
    assert (status, err) == (0, "")
    assert out == (
        "Name        DisplayName GroupType                  PrimarySmtpAddress\n"
        "----        ----------- ---------                  ------------------\n"
        "Sales scope Sales scope Universal, SecurityEnabled sales_scope@contoso.onmicrosoft.com\n"
        "\n"
    )
    assert exo("Add-DistributionGroupMember -Identity 'Sales scope' -Member support -BypassSecurityGroupManagerCheck")[
        :2
    ] == (0, "")
    assert exo("Add-DistributionGroupMember sales_scope -Member support")[2] == (
        'Add-DistributionGroupMember : The recipient "support@contoso.onmicrosoft.com" is already a member of the '
        'group "Sales scope".\n'
    )
    assert exo("Remove-DistributionGroupMember -Identity sales_scope -Member billing -Confirm:$false") == (0, "", "")
    assert exo("Get-DistributionGroupMember sales_scope") == (
        0,
        "Name             RecipientType\n"
        "----             -------------\n"
        "Sales            UserMailbox\n"
        "Customer Support UserMailbox\n"
        "\n",
        "",
    )
    group = control.group("sales_scope@contoso.onmicrosoft.com")
    assert group["members"] == [f"sales@{DOMAIN}", f"support@{DOMAIN}"]

    exo(f"New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId 'Sales scope' -AccessRight RestrictAccess")
    assert [p["scope"] for p in policies(control)] == [f"sales_scope@{DOMAIN}"]
    status, out, _ = exo(
        f"Test-ApplicationAccessPolicy sales -AppId {app_id}; Test-ApplicationAccessPolicy billing -AppId {app_id}"
    )
    assert (status, out) == (
        0,
        test_output(app_id, tenant, "sales", "Granted") + test_output(app_id, tenant, "billing", "Denied"),
    )
    assert exo("Remove-DistributionGroup sales_scope")[2] == (
        "Remove-DistributionGroup : sales_scope@contoso.onmicrosoft.com is the scope of an access policy.\n"
    )


def test_distribution_groups_are_not_security_principals(exo, control):
    message = (
        "New-DistributionGroup : m365-mock creates only mail-enabled security groups (-Type Security): a "
        "distribution group is not a security principal, so it can't be the scope of an application access "
        "policy.\n"
    )
    assert exo("New-DistributionGroup -Name Sales-DL") == (1, "", message)
    assert exo("New-DistributionGroup -Name Sales-DL -Type Distribution") == (1, "", message)
    assert exo("New-DistributionGroup -Name x -Type Security -Members nobody")[2] == (
        'New-DistributionGroup : Couldn\'t find object "nobody". Please make sure that it was spelled correctly '
        "or specify a different object.\n"
    )
    assert [g["display_name"] for g in control.groups()] == ["cctr_sec_group"]
    assert exo("Get-DistributionGroup | select Name, PrimarySmtpAddress") == (
        0,
        "Name           PrimarySmtpAddress\n"
        "----           ------------------\n"
        "cctr_sec_group cctr_sec_group@contoso.onmicrosoft.com\n"
        "\n",
        "",
    )


# ---------------------------------------------------------------- RBAC for Applications


def test_rbac_for_applications(exo, control, demo_app):
    app_id, sp_id = demo_app.app_id, demo_app.service_principal_id
    status, out, err = exo(
        f"New-ServicePrincipal -AppId {app_id} -ServiceId {sp_id} -DisplayName 'CC connector'\n"
        "New-ManagementScope -Name 'Support only' -RecipientRestrictionFilter \"MemberOfGroup -eq 'cctr_sec_group'\"\n"
        "New-ManagementRoleAssignment -Name cc-read -Role 'Application Mail.ReadWrite' -App 'CC connector' "
        "-CustomResourceScope 'Support only'\n"
    )
    assert (status, err) == (0, "")
    assert out == (
        "DisplayName  ObjectId                             AppId\n"
        "-----------  --------                             -----\n"
        f"CC connector {sp_id} {app_id}\n"
        "\n"
        "Name         ScopeRestrictionType Exclusive RecipientRoot RecipientFilter                    ServerFilter\n"
        "----         -------------------- --------- ------------- ---------------                    ------------\n"
        "Support only RecipientScope       False                   MemberOfGroup -eq 'cctr_sec_group'\n"
        "\n"
        "Name    Role                       RoleAssigneeName RoleAssigneeType AssignmentMethod CustomResourceScope\n"
        "----    ----                       ---------------- ---------------- ---------------- -------------------\n"
        "cc-read Application Mail.ReadWrite CC connector     ServicePrincipal Direct           Support only\n"
        "\n"
    )
    header = (
        "RoleName                   GrantedPermissions AllowedResourceScope ScopeType            InScope\n"
        "--------                   ------------------ -------------------- ---------            -------\n"
    )
    row = "Application Mail.ReadWrite Mail.ReadWrite     Support only         CustomRecipientScope "
    assert exo(f"Test-ServicePrincipalAuthorization {app_id} -Resource support") == (0, header + row + "True\n\n", "")
    assert exo("Test-ServicePrincipalAuthorization 'CC connector' -Resource sales@contoso.com") == (
        0,
        header + row + "False\n\n",
        "",
    )
    assert exo(f"Test-ServicePrincipalAuthorization -Identity {sp_id}") == (0, header + row + "Not Run\n\n", "")

    assert exo("Get-ServicePrincipal | select -ExpandProperty DisplayName") == (0, "CC connector\n", "")
    assert exo("Get-ManagementScope 'support only' | select -ExpandProperty RecipientFilter") == (
        0,
        "MemberOfGroup -eq 'cctr_sec_group'\n",
        "",
    )
    assert exo(f"Get-ManagementRoleAssignment -RoleAssignee {app_id} | fl") == (
        0,
        "Name                : cc-read\n"
        "Role                : Application Mail.ReadWrite\n"
        "RoleAssigneeName    : CC connector\n"
        "RoleAssigneeType    : ServicePrincipal\n"
        "AssignmentMethod    : Direct\n"
        "CustomResourceScope : Support only\n"
        "RecipientWriteScope : CustomRecipientScope\n"
        f"AppId               : {app_id}\n"
        "\n",
        "",
    )
    assert exo("Remove-ServicePrincipal 'CC connector'") == (
        1,
        "",
        "Remove-ServicePrincipal : CC connector still has role assignments.\n",
    )
    assert exo("Remove-ManagementRoleAssignment cc-read -Confirm:$false; Remove-ManagementScope 'Support only'") == (
        0,
        "",
        "",
    )
    assert control.role_assignments() == []
    assert control.management_scopes() == []
    assert exo("Get-ManagementRoleAssignment; Remove-ServicePrincipal 'CC connector'; Get-ServicePrincipal") == (
        0,
        "",
        "",
    )


def test_rbac_refusals(exo, demo_app):
    assert exo(f"New-ServicePrincipal -AppId {demo_app.app_id}") == (
        1,
        "",
        "New-ServicePrincipal : Cannot process command because of one or more missing mandatory parameters: "
        "ObjectId.\n",
    )
    assert exo("New-ManagementScope bad -RecipientRestrictionFilter \"Department -eq 'Sales'\"") == (
        1,
        "",
        "New-ManagementScope : The property 'Department' can't be used in a recipient restriction filter.\n",
    )
    assert exo("New-ManagementRoleAssignment -Role 'Application Mail.Read' -App nobody") == (
        1,
        "",
        "New-ManagementRoleAssignment : The operation couldn't be performed because object 'nobody' couldn't be "
        "found.\n",
    )


# ---------------------------------------------------------------- session helpers and the prompt


def test_connect_and_helpers(exo):
    status, out, err = exo(
        "Import-Module ExchangeOnlineManagement\n"
        "Connect-ExchangeOnline -UserPrincipalName admin@contoso.onmicrosoft.com -ShowBanner:$false\n"
        'Write-Host "Policies:"\nGet-Command *DistributionGroupMember | ft Name\n'
        "Disconnect-ExchangeOnline -Confirm:$false"
    )
    assert (status, err) == (0, "")
    assert out == (
        "Policies:\n"
        "Name\n----\nAdd-DistributionGroupMember\nGet-DistributionGroupMember\nRemove-DistributionGroupMember\n\n"
    )


def test_interactive_prompt_continues_incomplete_lines(control, tenant, app_id):
    lines = iter(
        [
            "New-ApplicationAccessPolicy `",
            f"  -AppId {app_id} -PolicyScopeGroupId cctr_sec_group `",
            "  -AccessRight RestrictAccess | select AccessRight",
            "$box = 'sales'",
            f"Test-ApplicationAccessPolicy $box -AppId {app_id} | select AccessCheckResult",
            "Get-Nothing",
            "exit",
            "Get-Mailbox",
        ]
    )
    prompts: list[str] = []

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        return next(lines)

    out, err = io.StringIO(), io.StringIO()
    status = interactive(Shell(control, out, err), read_line, out)
    assert status == 1
    assert prompts == ["PS> ", ">> ", ">> ", "PS> ", "PS> ", "PS> ", "PS> "]
    assert (
        out.getvalue() == "AccessRight\n-----------\nRestrictAccess\n\nAccessCheckResult\n-----------------\nDenied\n\n"
    )
    assert err.getvalue().startswith("Get-Nothing : The term 'Get-Nothing' is not recognized")


def test_standard_input_script(control):
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(text=None, file=None, url=None, admin_key=None, ca_file=None, tenant=None)
    status = main(
        args, stdin=io.StringIO("Get-Mailbox -RecipientTypeDetails SharedMailbox\n"), out=out, err=err, client=control
    )
    assert (status, out.getvalue(), err.getvalue()) == (0, SHARED_TABLE, "")


def test_wrong_admin_key_and_tenant(app):
    session = FlaskSession(app.test_client())
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(text="Get-Mailbox", file=None)
    assert main(args, out=out, err=err, client=ControlClient("https://localhost", "wrong", session=session)) == 1
    assert err.getvalue() == (
        "m365-mock exo: The control API needs the emulator's admin key in the X-M365-Admin-Key header "
        "(printed at start-up and in connection.json).\n"
    )
    err = io.StringIO()
    client = ControlClient("https://localhost", ADMIN_KEY, tenant="fabrikam.com", session=session)
    assert main(args, out=out, err=err, client=client) == 1
    assert (
        err.getvalue()
        == "m365-mock exo: This emulator has no tenant 'fabrikam.com'; it has: contoso.onmicrosoft.com.\n"
    )
    client = ControlClient("https://localhost", ADMIN_KEY, tenant="CONTOSO.COM", session=session)
    assert (
        main(Namespace(text="Get-Mailbox sales | select -Expand Alias", file=None), out=out, err=err, client=client)
        == 0
    )
    assert out.getvalue() == "sales\n"


def test_cli_without_an_emulator(tmp_path, monkeypatch, capsys):
    for name in ("M365_MOCK_BASE_URL", "M365_MOCK_ADMIN_KEY", "M365_MOCK_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["exo", "--state-dir", str(tmp_path), "-c", "Get-Mailbox"]) == 2
    assert capsys.readouterr().err == (
        f"m365-mock exo: no emulator to talk to: {tmp_path / 'connection.json'} does not exist (start `m365-mock "
        "serve`), and neither --url nor M365_MOCK_BASE_URL is given\n"
    )
    assert cli.main(["exo", "--state-dir", str(tmp_path), "--url", "http://127.0.0.1:1", "-c", "Get-Mailbox"]) == 2
    assert capsys.readouterr().err == (
        "m365-mock exo: the control API needs the admin key: give --admin-key or M365_MOCK_ADMIN_KEY\n"
    )
    monkeypatch.setenv("M365_MOCK_ADMIN_KEY", "k")
    assert cli.main(["exo", "--state-dir", str(tmp_path), "--url", "http://127.0.0.1:1", "-c", "Get-Mailbox"]) == 1
    assert capsys.readouterr().err == (
        "m365-mock exo: Cannot reach the emulator at http://127.0.0.1:1: Connection refused\n"
    )
    assert cli.main(["exo", "--state-dir", str(tmp_path), "--url", "http://x", "-c", "Get-Mailbox 'x"]) == 1
    assert capsys.readouterr().err == "ParserError: line 1, char 13: The string is missing the terminator: '.\n"


# ---------------------------------------------------------------- through the real served emulator


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    with start_emulator(tmp_path_factory.mktemp("exo-state")) as running:
        yield running


def exo_process(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import certifi

    # REQUESTS_CA_BUNDLE set to a bundle without the emulator's CA: the shell must pass its CA per request.
    base = {k: v for k, v in os.environ.items() if not k.startswith("M365_MOCK_")}
    return subprocess.run(
        [sys.executable, "-m", "m365_mock", "exo", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "REQUESTS_CA_BUNDLE": certifi.where(), **(env or {})},
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.slow
def test_served_runbook_file(real, tmp_path):
    app_id, state = real.app["app_id"], str(real.state_dir)
    listed = exo_process("--state-dir", state, "-c", "Get-ApplicationAccessPolicy | select -ExpandProperty Identity")
    assert listed.returncode == 0 and listed.stderr == ""
    [identity] = listed.stdout.splitlines()  # the demo tenant's own policy
    removed = exo_process("--state-dir", state, "-c", f"Remove-ApplicationAccessPolicy -Identity '{identity}'")
    assert (removed.returncode, removed.stdout, removed.stderr) == (0, "", "")

    script = tmp_path / "runbook.ps1"
    script.write_text(
        RUNBOOK.format(app=app_id)
        + f"Test-ApplicationAccessPolicy -Identity support@{DOMAIN} -AppId {app_id}\n"
        + f"Test-ApplicationAccessPolicy -Identity sales@{DOMAIN} -AppId {app_id}\n"
    )
    done = exo_process("--state-dir", state, "-f", str(script))
    assert (done.returncode, done.stderr) == (0, "")
    blocks = done.stdout.split("\n\n")
    assert blocks[0].splitlines()[-4:] == [
        "AccessRight      : RestrictAccess",
        "ShardType        : All",
        "IsValid          : True",
        "ObjectState      : Unchanged",
    ]
    assert blocks[1].splitlines()[0] == f"AppId             : {app_id}"
    assert blocks[1].splitlines()[-1] == "AccessCheckResult : Granted"
    assert blocks[2].splitlines()[1] == "Mailbox           : sales"
    assert blocks[2].splitlines()[-1] == "AccessCheckResult : Denied"
    assert blocks[3:] == [""]


@pytest.mark.slow
def test_served_stdin_with_environment_variables(real, tmp_path):
    env = {
        "M365_MOCK_BASE_URL": real.base_url,
        "M365_MOCK_ADMIN_KEY": real.facts["admin_key"],
        "M365_MOCK_CA_FILE": real.ca_file or "",
    }
    done = exo_process(
        "--state-dir",
        str(tmp_path),
        stdin="Get-Mailbox -RecipientTypeDetails SharedMailbox\nNew-Foo\n",
        env=env,
    )
    assert done.returncode == 1
    assert done.stdout == SHARED_TABLE
    assert done.stderr == (
        "New-Foo : The term 'New-Foo' is not recognized as the name of a cmdlet, function, script file, or "
        "operable program.\n"
    )
