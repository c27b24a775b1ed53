"""README.md's client snippet, pasted as it is, against a real emulator: MSAL and azure-identity get tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from m365_mock.tools.process import start_emulator

pytestmark = [pytest.mark.slow, pytest.mark.compat]
README = Path(__file__).resolve().parents[1] / "README.md"

# Run after the snippet: both tokens are signed by this emulator, for the app the snippet read from connection.json.
CHECK = """
import jwt, requests
keys = jwt.PyJWKSet.from_dict(requests.get(f"{BASE_URL}/{TENANT}/discovery/v2.0/keys", verify=CA_FILE).json())
for access_token in (result["access_token"], token.token):
    key = keys[jwt.get_unverified_header(access_token)["kid"]].key
    claims = jwt.decode(access_token, key, algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert (claims["appid"], claims["tid"]) == (CLIENT_ID, TENANT), claims
print("CHECKED")
"""


def client_snippet() -> str:
    section = README.read_text().split("## Pointing clients at it", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_client_snippet_works_as_pasted(tmp_path: Path):
    home = tmp_path / "home"
    unset = ("M365_MOCK_", "REQUESTS_CA", "SSL_CERT", "CURL_CA")
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    env["HOME"] = str(home)
    with start_emulator(home / ".m365-mock") as running:
        result = subprocess.run(
            [sys.executable, "-c", client_snippet() + CHECK],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert running.process.poll() is None
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "MSAL: token"
    assert lines[1].startswith("azure-identity: token valid until ")
    assert lines[-1] == "CHECKED"
