"""`python -m client.cli token|folders|fetch|send` (= `m365-mock client ...`) against a real emulator."""

from __future__ import annotations

import email
import io
import json
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import jwt
import pytest

from m365_mock.client import MailClient
from m365_mock.client.cli import build_parser, main
from m365_mock.tools.process import RunningEmulator
from tests.client.conftest import BILLING, RAOP, SALES, SUPPORT, Control

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home: no default profile, no ~/.m365-mock."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def cli(home: Path, *argv: str, env: dict[str, str] | None = None, stdin: str | None = None):
    """Run the CLI in a clean environment (no M365_* variables, an empty home)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("M365_", "XDG_CONFIG"))}
    clean.update({"HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "m365_mock.client.cli", *argv],
        cwd=ROOT,
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_and_claims(emu: RunningEmulator, control: Control, home: Path) -> None:
    state = str(emu.state_dir)
    result = cli(home, "token", "--emulator", state)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["appid"] == emu.app["app_id"] and claims["tid"] == emu.tenant["id"]
    result = cli(home, "token", "--claims", "--emulator", state)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["appid"] == emu.app["app_id"] and shown["roles"] == ["Mail.ReadWrite", "Mail.Send"]


def test_default_state_dir_from_environment(emu: RunningEmulator, control: Control, home: Path) -> None:
    result = cli(home, "folders", "--mailbox", SUPPORT, "--emulator", env={"M365_MOCK_STATE_DIR": str(emu.state_dir)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "total", "unread"]
    inbox = next(line.split() for line in lines if line.startswith("Inbox "))
    assert inbox[1] == "13"


def test_configuration_from_environment(emu: RunningEmulator, control: Control, home: Path) -> None:
    env = {
        "M365_TENANT": emu.tenant["domains"][0],
        "M365_CLIENT_ID": emu.app["app_id"],
        "M365_CLIENT_SECRET": emu.app["client_secret"],
        "M365_LOGIN_URL": emu.base_url,
        "M365_GRAPH_URL": emu.facts["graph_url"],
        "M365_CA_FILE": emu.ca_file,
    }
    result = cli(home, "folders", "--mailbox", BILLING, env=env)
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:2] == ["Inbox", "3"] for line in result.stdout.splitlines())


def test_configuration_from_default_profile(emu: RunningEmulator, control: Control, home: Path) -> None:
    profile = home / ".config" / "m365-mock" / "client.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text(
        f'[default]\ntenant = "{emu.tenant["id"]}"\nclient_id = "{emu.app["app_id"]}"\n'
        f'client_secret = "{emu.app["client_secret"]}"\nlogin_url = "{emu.base_url}"\n'
        f'graph_url = "{emu.facts["graph_url"]}"\nca_file = "{emu.ca_file}"\n'
    )
    result = cli(home, "fetch", "--mailbox", SUPPORT, "--top", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["received", "from", "subject", "read"] and len(lines) == 6


def test_fetch_marks_read_and_moves_each_listed_message_once(
    emu: RunningEmulator, control: Control, home: Path, settings
) -> None:
    control.add_mail(SUPPORT, count=30, unreadRatio=1.0)
    with MailClient(settings) as mail:
        unread = {m["subject"] for m in mail.messages(SUPPORT, folder="inbox", unread=True, select="subject")}
        unread_count = mail.folder(SUPPORT, "inbox")["unreadItemCount"]
    assert unread_count >= 30
    args = ["fetch", "--mailbox", SUPPORT, "--unread", "--mark-read", "--move-to", "Processed", "--json"]
    result = cli(home, *args, "--emulator", str(emu.state_dir))
    assert result.returncode == 0, result.stderr
    processed = json.loads(result.stdout)
    assert len(processed) == unread_count == len({m["id"] for m in processed})
    assert {m["subject"] for m in processed} == unread
    assert all(m["isRead"] is True for m in processed)
    with MailClient(settings) as mail:
        folder = mail.folder(SUPPORT, "Processed")
        assert folder["totalItemCount"] == unread_count and folder["unreadItemCount"] == 0
        assert {m["parentFolderId"] for m in processed} == {folder["id"]}
        assert mail.folder(SUPPORT, "inbox")["unreadItemCount"] == 0
    again = cli(home, *args, "--emulator", str(emu.state_dir))
    assert again.returncode == 0 and json.loads(again.stdout) == []


def test_fetch_table_with_top(emu: RunningEmulator, control: Control, home: Path) -> None:
    control.add_mail(SUPPORT, subject="Printer on fire", **{"from": {"emailAddress": {"address": "it@vendor.example"}}})
    result = cli(home, "fetch", "--mailbox", SUPPORT, "--top", "20", "--emulator", str(emu.state_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + 14
    row = next(line for line in lines if "Printer on fire" in line)
    assert "it@vendor.example" in row and row.split()[-1] == "no"
    assert row[:4].isdigit() and row[4] == "-" and row[10] == " "  # "YYYY-MM-DD HH:MM"


def test_fetch_saves_each_message_as_mime(emu: RunningEmulator, control: Control, home: Path, tmp_path: Path) -> None:
    control.add_mail(BILLING, subject="Keep a copy", body={"contentType": "text", "content": "Archive me."})
    out = tmp_path / "eml"
    result = cli(home, "fetch", "--mailbox", BILLING, "--save-mime", str(out), "--emulator", str(emu.state_dir))
    assert result.returncode == 0, result.stderr
    saved = {p.name: email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in out.glob("*.eml")}
    [kept] = [m for m in saved.values() if m["Subject"] == "Keep a copy"]
    assert f"{kept['Message-ID'].strip('<>')}.eml" in saved
    assert kept.get_body(("plain",)).get_content().strip() == "Archive me."


def test_send_with_attachment_and_body_from_stdin(
    emu: RunningEmulator, control: Control, home: Path, tmp_path: Path, settings
) -> None:
    attachment = tmp_path / "invoice.pdf"
    attachment.write_bytes(b"%PDF-1.4 fake")
    result = cli(
        home,
        "send", "--from", SUPPORT, "--to", BILLING, "--cc", SALES, "--subject", "Invoice attached",
        "--body-file", "-", "--html", "--attach", str(attachment), "--emulator", str(emu.state_dir),
        stdin="<b>see attachment</b>",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sent as support@contoso.onmicrosoft.com to 2 recipient(s)" in result.stdout
    with MailClient(settings) as mail:
        [arrived] = mail.messages(BILLING, filter="subject eq 'Invoice attached'")
        assert arrived["hasAttachments"] is True and arrived["body"]["contentType"] == "html"
        assert "see attachment" in arrived["body"]["content"]


def test_access_policy_error_exits_1(emu: RunningEmulator, control: Control, home: Path) -> None:
    result = cli(home, "fetch", "--mailbox", SALES, "--emulator", str(emu.state_dir))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == f"error: ErrorAccessDenied: {RAOP}"


def test_wrong_secret_exits_1_with_the_aadsts_code(emu: RunningEmulator, control: Control, home: Path) -> None:
    result = cli(home, "token", "--emulator", str(emu.state_dir), "--client-secret", "nope")
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid_client: AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID" not in result.stderr


def test_configuration_problems_exit_2(emu: RunningEmulator, control: Control, home: Path, tmp_path: Path) -> None:
    result = cli(home, "token")
    assert result.returncode == 2 and result.stderr.startswith("error: config: missing tenant and client_id")
    result = cli(home, "token", "--emulator", str(tmp_path / "no-state"))
    assert result.returncode == 2 and "is the emulator running" in result.stderr
    result = cli(home, "send", "--from", SUPPORT, "--to", BILLING, "--subject", "s", "--body", "b",
                 "--attach", str(tmp_path / "missing.txt"), "--emulator", str(emu.state_dir))  # fmt: skip
    assert result.returncode == 2 and "missing.txt: no such file" in result.stderr
    result = cli(home, "send", "--from", SUPPORT, "--to", BILLING, "--subject", "s")
    assert result.returncode == 2 and "--body" in result.stderr  # argparse: one of --body/--body-file


def test_main_with_parsed_arguments(emu: RunningEmulator, control: Control, monkeypatch: pytest.MonkeyPatch) -> None:
    """How `m365-mock client` calls in: add_arguments on its parser, then main(args)."""
    for name in [k for k in os.environ if k.startswith("M365_")]:
        monkeypatch.delenv(name)
    args = build_parser().parse_args(["folders", "--mailbox", SUPPORT, "--emulator", str(emu.state_dir)])
    out, err = io.StringIO(), io.StringIO()
    assert main(args, out=out, err=err) == 0 and err.getvalue() == ""
    assert "Inbox" in out.getvalue()
    args = build_parser().parse_args(
        ["folders", "--mailbox", "ghost@contoso.onmicrosoft.com", "--emulator", str(emu.state_dir)]
    )
    assert main(args, out=out, err=err) == 1
    assert err.getvalue().startswith("error: ErrorInvalidUser: The requested user 'ghost@contoso.onmicrosoft.com'")


def test_sync_keeps_its_delta_link_between_runs(
    emu: RunningEmulator, control: Control, home: Path, tmp_path: Path
) -> None:
    state = tmp_path / "sync" / "billing.json"
    args = ["sync", "--mailbox", BILLING, "--state", str(state), "--json", "--emulator", str(emu.state_dir)]
    first = cli(home, *args)
    assert first.returncode == 0, first.stderr
    assert json.loads(state.read_text())["deltaLink"].startswith("https://")
    control.add_mail(BILLING, subject="New since the last run")
    second = cli(home, *args)
    assert second.returncode == 0, second.stderr
    assert [m["subject"] for m in json.loads(second.stdout)] == ["New since the last run"]
    third = cli(home, *args)
    assert third.returncode == 0 and json.loads(third.stdout) == []
    other = cli(home, "sync", "--mailbox", SUPPORT, "--state", str(state), "--emulator", str(emu.state_dir))
    assert other.returncode == 2 and "keeps the round of" in other.stderr
