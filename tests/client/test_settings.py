"""ClientSettings from code, the environment, profile files and an emulator's connection facts; CLI precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m365_mock.client import ClientSettings, ConfigError
from m365_mock.client.cli import build_parser, settings_from_args

FACTS = {
    "base_url": "https://127.0.0.1:8443",
    "graph_url": "https://127.0.0.1:8443/v1.0",
    "ca_file": "/state/ca.pem",
    "tenants": [{"id": "tid-1", "domains": ["contoso.onmicrosoft.com"]}],
    "apps": [
        {"tenant_id": "tid-1", "app_id": "APP-NOSECRET", "client_secret": None},
        {"tenant_id": "tid-1", "app_id": "app-2", "client_secret": "s2"},
    ],
    "admin_key": "k",
}


def test_defaults_point_at_microsoft() -> None:
    settings = ClientSettings("contoso.com", "app", "secret")
    assert settings.login_url == "https://login.microsoftonline.com"
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"
    assert settings.token_endpoint == "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
    assert settings.scope == "https://graph.microsoft.com/.default"
    assert settings.verify is True and settings.max_retries == 3 and settings.timeout == 30.0
    shown = repr(ClientSettings("t", "a", "hunter2", certificate_password="pa55word"))
    assert "hunter2" not in shown and "pa55word" not in shown  # settings get logged; secrets must not


def test_validation() -> None:
    with pytest.raises(ConfigError, match="'tenant' is required"):
        ClientSettings(" ", "app")
    with pytest.raises(ConfigError, match="http"):
        ClientSettings("t", "a", graph_url="graph.microsoft.com")
    with pytest.raises(ConfigError, match="assertion_algorithm"):
        ClientSettings("t", "a", assertion_algorithm="HS256")
    with pytest.raises(ConfigError):
        ClientSettings("t", "a", max_retries=-1)
    assert ClientSettings("t", "a", login_url="https://x/", graph_url="https://y/v1.0/").login_url == "https://x"


def test_from_env() -> None:
    environ = {
        "M365_TENANT": "contoso.com",
        "M365_CLIENT_ID": "app",
        "M365_CLIENT_SECRET": "s",
        "M365_GRAPH_URL": "https://emu:8443/v1.0",
        "M365_MAX_RETRIES": "5",
        "M365_TIMEOUT": "7.5",
        "M365_CA_FILE": "",
    }
    settings = ClientSettings.from_env(environ)
    assert (settings.tenant, settings.client_id, settings.client_secret) == ("contoso.com", "app", "s")
    assert settings.graph_url == "https://emu:8443/v1.0" and settings.max_retries == 5 and settings.timeout == 7.5
    assert settings.ca_file is None
    other = ClientSettings.from_env({"DAEMON_TENANT": "t", "DAEMON_CLIENT_ID": "a"}, prefix="DAEMON_")
    assert (other.tenant, other.client_id) == ("t", "a")
    with pytest.raises(ConfigError, match="missing tenant"):
        ClientSettings.from_env({"M365_CLIENT_ID": "a"})
    with pytest.raises(ConfigError, match="must be a number"):
        ClientSettings.from_env({"M365_TENANT": "t", "M365_CLIENT_ID": "a", "M365_MAX_RETRIES": "many"})


def test_from_toml_profile(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    profile = tmp_path / "client.toml"
    profile.write_text(
        '[default]\ntenant = "contoso.com"\nclient_id = "app"\nclient_secret = "s"\n\n'
        '[ci]\ntenant = "fabrikam.com"\nclient-id = "app2"\ncertificate = "certs/daemon.pem"\n'
        "max_retries = 1\nmax_retry_wait = 5\n"
    )
    default = ClientSettings.from_profile(profile)
    assert (default.tenant, default.client_secret) == ("contoso.com", "s")
    ci = ClientSettings.from_profile(profile, "ci")
    assert ci.client_id == "app2" and ci.certificate_file == str(tmp_path / "certs" / "daemon.pem")
    assert ci.max_retries == 1 and ci.max_retry_wait == 5.0
    with pytest.raises(ConfigError, match=r"profile 'prod' is not in .*\(profiles there: ci, default\)"):
        ClientSettings.from_profile(profile, "prod")


def test_from_toml_profiles_table_and_ini(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text('[profiles.default]\ntenant = "t"\nclient_id = "a"\n')
    assert ClientSettings.from_profile(toml).tenant == "t"
    ini = tmp_path / "client.ini"
    ini.write_text("[default]\ntenant = t\nclient_id = a\nca_file = ca.pem\ntimeout = 3\n")
    settings = ClientSettings.from_profile(ini)
    assert settings.ca_file == str(tmp_path / "ca.pem") and settings.timeout == 3.0
    ini.write_text("[default]\ntenant = t\nclient_id = a\ncolour = blue\n")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        ClientSettings.from_profile(ini)
    with pytest.raises(ConfigError, match="cannot read profile file"):
        ClientSettings.from_profile(tmp_path / "missing.toml")
    toml.write_text("[default\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ClientSettings.from_profile(toml)


def test_merged_ignores_none_and_copies() -> None:
    base = ClientSettings("t", "a", "s")
    changed = base.merged(client_secret=None, graph_url="https://emu/v1.0", max_retries="2")
    assert changed is not base and changed.client_secret == "s" and changed.max_retries == 2
    assert changed.graph_url == "https://emu/v1.0" and base.graph_url == "https://graph.microsoft.com/v1.0"
    with pytest.raises(TypeError, match="no field"):
        base.merged(colour="blue")


def test_for_emulator_from_dict_file_and_folder(tmp_path: Path) -> None:
    settings = ClientSettings.for_emulator(FACTS)
    assert (settings.tenant, settings.client_id, settings.client_secret) == ("tid-1", "app-2", "s2")
    assert settings.login_url == "https://127.0.0.1:8443" and settings.graph_url == "https://127.0.0.1:8443/v1.0"
    assert settings.ca_file == "/state/ca.pem"
    assert settings.token_endpoint == "https://127.0.0.1:8443/tid-1/oauth2/v2.0/token"
    (tmp_path / "connection.json").write_text(json.dumps(FACTS))
    assert ClientSettings.for_emulator(tmp_path / "connection.json") == settings
    assert ClientSettings.for_emulator(str(tmp_path)) == settings
    chosen = ClientSettings.for_emulator(FACTS, app_id="app-nosecret")
    assert chosen.client_id == "APP-NOSECRET" and chosen.client_secret is None
    with pytest.raises(ConfigError, match="no app 'other'"):
        ClientSettings.for_emulator(FACTS, app_id="other")
    with pytest.raises(ConfigError, match="is the emulator running"):
        ClientSettings.for_emulator(tmp_path / "nowhere")


# ---------------------------------------------------------------- command-line precedence


def parse(*argv: str):
    return build_parser().parse_args(["token", *argv])


def test_cli_flags_beat_environment_beat_profile(tmp_path: Path) -> None:
    profile = tmp_path / "m365-mock" / "client.toml"
    profile.parent.mkdir()
    profile.write_text('[default]\ntenant = "from-profile"\nclient_id = "p-app"\nclient_secret = "p"\n')
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "M365_CLIENT_ID": "env-app"}
    settings = settings_from_args(parse(), environ)
    assert (settings.tenant, settings.client_id, settings.client_secret) == ("from-profile", "env-app", "p")
    settings = settings_from_args(parse("--client-id", "flag-app", "--graph-url", "https://g/v1.0"), environ)
    assert settings.client_id == "flag-app" and settings.graph_url == "https://g/v1.0"


def test_cli_named_profile_and_missing_configuration(tmp_path: Path) -> None:
    profile = tmp_path / "mine.ini"
    profile.write_text("[ci]\ntenant = t\nclient_id = a\n")
    settings = settings_from_args(parse("--profile-file", str(profile), "--profile", "ci"), {})
    assert (settings.tenant, settings.client_id) == ("t", "a")
    with pytest.raises(ConfigError, match="missing tenant and client_id"):
        settings_from_args(parse(), {"XDG_CONFIG_HOME": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="no profile file"):
        settings_from_args(parse("--profile", "ci"), {"XDG_CONFIG_HOME": str(tmp_path / "empty")})


def test_cli_emulator_replaces_environment(tmp_path: Path) -> None:
    (tmp_path / "connection.json").write_text(json.dumps(FACTS))
    environ = {"M365_TENANT": "real.onmicrosoft.com", "M365_CERTIFICATE": "/prod/daemon.pem"}
    settings = settings_from_args(parse("--emulator", str(tmp_path)), environ)
    assert settings.tenant == "tid-1" and settings.certificate_file is None and settings.client_secret == "s2"
    default = settings_from_args(parse("--emulator"), {"M365_MOCK_STATE_DIR": str(tmp_path)})
    assert default == settings
    other = settings_from_args(parse("--emulator", str(tmp_path), "--client-id", "new-app", "--client-secret", "x"), {})
    assert (other.client_id, other.client_secret, other.login_url) == ("new-app", "x", "https://127.0.0.1:8443")
