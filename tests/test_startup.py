"""`m365-mock serve` start-up errors: one clear line, exit status 2, nothing made or replaced behind the user's back.

Most cases run the command line in this process (they stop before serving; `serve` is replaced by a function
that fails the test if it is reached); the last ones run real processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from m365_mock import cli
from m365_mock.identity.keys import SigningKey, ensure_tls_files

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def never_serve(monkeypatch):
    def serve(*args, **kwargs):
        raise AssertionError("the emulator started serving")

    monkeypatch.setattr("m365_mock.server.serve", serve)


def serve_fails(capsys, *args: str) -> str:
    """Run `m365-mock serve *args`, expect exit status 2, and return its one line on stderr."""
    status = cli.main(["serve", "--port", "0", *args])
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("m365-mock: ")
    return lines[0]


@pytest.fixture
def state(tmp_path) -> Path:
    """A state folder as a first start leaves it: CA, TLS leaf and token-signing key."""
    folder = tmp_path / "state"
    folder.mkdir()
    ensure_tls_files(folder)
    SigningKey.load_or_create(folder)
    return folder


def test_a_state_dir_that_is_a_file(capsys, tmp_path):
    path = tmp_path / "state"
    path.write_text("")
    line = serve_fails(capsys, "--state-dir", str(path))
    assert str(path) in line and "not a folder" in line


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` made unwritable even for root (the immutable attribute), or the test skipped."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if not chattr or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only for root here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_a_read_only_state_dir(capsys, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    with read_only(folder):
        line = serve_fails(capsys, "--state-dir", str(folder))
    assert str(folder) in line and "cannot write" in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--threads", "-1"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--threads", "1000"], "--threads"),
        (["--body-timeout", "0"], "--body-timeout"),
    ],
)
def test_numbers_out_of_range(capsys, tmp_path, args, named):
    line = serve_fails(capsys, "--state-dir", str(tmp_path), *args)
    assert named in line and args[1] in line


@pytest.mark.parametrize(
    "name", ["ca.pem", "ca-key.pem", "tls-cert.pem", "tls-key.pem", "signing-key.pem", "signing-cert.pem"]
)
def test_a_corrupt_pem_is_named(capsys, state, name):
    (state / name).write_text("-----BEGIN GARBAGE-----\nnot base64\n-----END GARBAGE-----\n")
    before = {path.name: path.read_bytes() for path in state.iterdir()}
    line = serve_fails(capsys, "--state-dir", str(state))
    assert str(state / name) in line
    assert {path.name: path.read_bytes() for path in state.iterdir()} == before


@pytest.mark.parametrize(
    ("present", "missing"), [("signing-key.pem", "signing-cert.pem"), ("signing-cert.pem", "signing-key.pem")]
)
def test_half_a_signing_key_pair_is_not_replaced(capsys, state, present, missing):
    kept = (state / present).read_bytes()
    (state / missing).unlink()
    line = serve_fails(capsys, "--state-dir", str(state))
    assert present in line and f"{missing} is missing" in line
    assert "tokens" in line and "delete signing-key.pem and signing-cert.pem" in line
    assert (state / present).read_bytes() == kept and not (state / missing).exists()


def test_half_a_ca_pair_is_not_replaced(capsys, state):
    kept = (state / "ca.pem").read_bytes()
    (state / "ca-key.pem").unlink()
    line = serve_fails(capsys, "--state-dir", str(state))
    assert "ca-key.pem is missing" in line
    assert (state / "ca.pem").read_bytes() == kept


def test_a_signing_key_that_is_not_the_certificates(capsys, state, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    SigningKey.load_or_create(other)
    shutil.copy(other / "signing-key.pem", state / "signing-key.pem")
    line = serve_fails(capsys, "--state-dir", str(state))
    assert "is not the key of signing-cert.pem" in line


def test_ca_path_names_a_corrupt_ca(capsys, state):
    (state / "ca.pem").write_text("nonsense")
    assert cli.main(["ca-path", "--state-dir", str(state)]) == 2
    assert str(state / "ca.pem") in capsys.readouterr().err


def test_the_banner_is_out_before_the_connection_files(capsys, monkeypatch, tmp_path):
    """Whoever sees connection.json appear (start_emulator, tests) finds the banner already in the log."""
    order: list[str] = []

    def write_connection_files(state_dir, facts):
        order.append("files, banner printed before: " + str("is serving" in capsys.readouterr().out))

    def serve(app, options, on_ready, **hooks):
        on_ready()

    monkeypatch.setattr("m365_mock.server.write_connection_files", write_connection_files)
    monkeypatch.setattr("m365_mock.server.serve", serve)
    assert cli.main(["serve", "--port", "0", "--state-dir", str(tmp_path), "--http"]) == 0
    assert order == ["files, banner printed before: True"]


def test_help_describes_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "Microsoft Graph mail" in top and "show where its CA lives" not in top
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():
        summary = next(c.help for c in commands._choices_actions if c.dest == name)
        assert summary and "\n" not in summary, name
        if name != "client":  # `client --help` is the reference client's own help
            assert sub.description, name


def test_snippets_in_the_banner_carry_their_imports(tmp_path):
    from m365_mock.state.tenantfile import load_demo_world

    world = load_demo_world()
    facts = cli.connection_facts(world, "https://127.0.0.1:8443", tmp_path / "ca.pem", "key")
    text = cli.banner(facts, world, 0.0, "the demo tenant")
    msal = text.split("MSAL for Python (pip install msal):\n", 1)[1].split("\n\n", 1)[0]
    azure = text.split("azure-identity (pip install azure-identity):\n", 1)[1].split("\n\n", 1)[0]
    assert msal.startswith("import os, msal\n") and azure.startswith(
        "from azure.identity import ClientSecretCredential\n"
    )
    compile(msal, "msal-snippet", "exec")
    compile(azure, "azure-snippet", "exec")


def test_the_banner_and_the_connection_facts_name_the_dashboard(tmp_path):
    from m365_mock.state.tenantfile import load_demo_world

    world = load_demo_world()
    facts = cli.connection_facts(world, "https://127.0.0.1:8443", tmp_path / "ca.pem", "the-key")
    assert facts["dashboard_url"] == "https://127.0.0.1:8443/_m365/ui/"
    lines = cli.banner(facts, world, 0.0, "the demo tenant").splitlines()
    assert "  Dashboard:    https://127.0.0.1:8443/_m365/ui/  (log in with the admin key the-key)" in lines


# ---------------------------------------------------------------- real processes


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "m365_mock", *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


@pytest.mark.slow
def test_errors_are_one_line_without_a_traceback(tmp_path):
    result = run_cli("serve", "--threads", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "m365-mock: --threads must be between 1 and 64 (got 0)"
    (tmp_path / "signing-key.pem").write_text("x")
    result = run_cli("serve", "--port", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_connection_files_that_cannot_be_written_stop_the_emulator(tmp_path):
    (tmp_path / "connection.json").mkdir()
    (tmp_path / "connection.json" / "blocker").write_text("")
    result = run_cli("serve", "--port", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "could not be announced" in result.stderr and "connection.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_cut_short_by_a_closed_pipe_is_no_error():
    """`m365-mock scenario list | head -1`: the reader may be gone before the listing is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "m365_mock", "scenario", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert listed.returncode == 141
    assert "Traceback" not in listed.stderr and "BrokenPipeError" not in listed.stderr


def test_generated_admin_keys_never_look_like_an_option(monkeypatch):
    from m365_mock import emulator

    keys = iter(["-starts-with-a-dash", "--two-dashes", "fine-key"])
    monkeypatch.setattr(emulator.secrets, "token_urlsafe", lambda size: next(keys))
    assert emulator.new_admin_key() == "fine-key"


@pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
def test_a_persist_variable_that_is_neither_yes_nor_no_is_refused(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("M365_MOCK_PERSIST", value)
    line = serve_fails(capsys, "--state-dir", str(tmp_path))
    assert line == f"m365-mock: M365_MOCK_PERSIST must be 1, true, yes, on or 0, false, no, off (got '{value}')"
    assert not (tmp_path / "world.sqlite").exists()
