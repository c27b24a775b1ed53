"""ClientSettings: who the daemon is (tenant, app, credential) and where the services are.

Defaults point at the real Microsoft 365 (login.microsoftonline.com, graph.microsoft.com); the emulator needs only
`login_url`, `graph_url` and `ca_file` changed, which `ClientSettings.for_emulator` reads from connection.json.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m365_mock.client.errors import ConfigError

LOGIN_URL = "https://login.microsoftonline.com"
GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ASSERTION_ALGORITHMS = ("PS256", "RS256")

# Environment variable (after the prefix) -> field.
ENV_FIELDS = {
    "TENANT": "tenant",
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "CERTIFICATE": "certificate_file",
    "CERTIFICATE_PASSWORD": "certificate_password",
    "ASSERTION_ALGORITHM": "assertion_algorithm",
    "LOGIN_URL": "login_url",
    "GRAPH_URL": "graph_url",
    "SCOPE": "scope",
    "CA_FILE": "ca_file",
    "TIMEOUT": "timeout",
    "MAX_RETRIES": "max_retries",
    "MAX_RETRY_WAIT": "max_retry_wait",
    "RETRY_BACKOFF": "retry_backoff",
}
# Profile keys accepted besides the field names themselves (hyphens are read as underscores).
PROFILE_ALIASES = {"certificate": "certificate_file", "secret": "client_secret", "app_id": "client_id"}
PATH_FIELDS = ("certificate_file", "ca_file")


@dataclass
class ClientSettings:
    """Everything the token provider and the mail client need; immutable (use `merged` for a changed copy).

    A certificate credential (`certificate_file`: one PEM with the private key and the certificate) is used
    when set, else `client_secret`. `assertion_algorithm` is PS256 (with `x5t#S256`, as Entra documents today)
    or RS256 (with `x5t`, as MSAL and azure-identity send). Retries: at most `max_retries` more attempts on
    429/503/504, waiting `Retry-After` or `retry_backoff`·2^n seconds, never more than `max_retry_wait` in all.
    """

    tenant: str
    client_id: str
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    certificate_file: str | None = None
    login_url: str = LOGIN_URL
    graph_url: str = GRAPH_URL
    ca_file: str | None = None
    timeout: float = 30.0
    max_retries: int = 3
    max_retry_wait: float = 60.0
    retry_backoff: float = 1.0
    scope: str = GRAPH_SCOPE
    certificate_password: str | None = dataclasses.field(default=None, repr=False)
    assertion_algorithm: str = "PS256"

    def __post_init__(self) -> None:
        for name in ("tenant", "client_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"'{name}' is required (a non-empty string)")
            setattr(self, name, value.strip())
        for name in ("login_url", "graph_url"):
            value = str(getattr(self, name)).strip().rstrip("/")
            if not value.startswith(("https://", "http://")):
                raise ConfigError(f"'{name}' must be an http(s) URL, not {value!r}")
            setattr(self, name, value)
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, os.path.expanduser(str(value)))
        if self.client_secret == "":
            self.client_secret = None
        if self.assertion_algorithm.upper() not in ASSERTION_ALGORITHMS:
            raise ConfigError(f"'assertion_algorithm' must be one of {', '.join(ASSERTION_ALGORITHMS)}")
        self.assertion_algorithm = self.assertion_algorithm.upper()
        if self.timeout <= 0 or self.max_retries < 0 or self.max_retry_wait < 0 or self.retry_backoff < 0:
            raise ConfigError("'timeout' must be positive; retries, waits and backoff must not be negative")

    @property
    def token_endpoint(self) -> str:
        """The v2 token endpoint for this tenant (also the `aud` of certificate assertions)."""
        return f"{self.login_url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def verify(self) -> str | bool:
        """What to pass as `verify=` on every request: the CA file, or True for the system trust."""
        return self.ca_file or True

    def merged(self, **overrides: Any) -> ClientSettings:
        """A copy with `overrides` applied; None values are ignored (so unset command-line flags change nothing)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"ClientSettings has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **coerce_values(values))

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ClientSettings:
        """Settings from a mapping of field names to values (strings are converted); None values are dropped."""
        present = {k: v for k, v in values.items() if v is not None}
        missing = [name for name in ("tenant", "client_id") if not present.get(name)]
        if missing:
            raise ConfigError(f"missing {' and '.join(missing)} (give --tenant/--client-id, M365_* or a profile)")
        unknown = set(present) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}")
        return cls(**coerce_values(present))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "M365_") -> ClientSettings:
        """From `M365_TENANT`, `M365_CLIENT_ID`, `M365_CLIENT_SECRET`, `M365_CERTIFICATE`, `M365_LOGIN_URL`, ..."""
        return cls.from_values(env_values(environ, prefix))

    @classmethod
    def from_profile(cls, path: str | os.PathLike[str], name: str = "default") -> ClientSettings:
        """From section `name` of a TOML (`[default]`) or INI file; relative file paths are taken from its folder."""
        return cls.from_values(profile_values(path, name))

    @classmethod
    def for_emulator(
        cls, connection: Mapping[str, Any] | str | os.PathLike[str], app_id: str | None = None
    ) -> ClientSettings:
        """Settings for a running emulator from its connection facts (the dict, connection.json, or its folder).

        The app is `app_id`, else the first app with a valid client secret; its tenant, secret, the emulator's
        base URL (login), Graph URL and CA file are taken from the facts.
        """
        return cls.from_values(emulator_values(connection, app_id))


def coerce_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values from strings where needed (profile files and the environment give strings)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            if name in ("timeout", "max_retry_wait", "retry_backoff"):
                out[name] = float(value)
            elif name == "max_retries":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                out[name] = int(value)
            elif isinstance(value, os.PathLike):
                out[name] = os.fspath(value)
            else:
                out[name] = value if isinstance(value, str) else str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"'{name}' must be a number, not {value!r}") from None
    return out


def env_values(environ: Mapping[str, str] | None = None, prefix: str = "M365_") -> dict[str, str]:
    """The settings present (non-empty) in the environment, by field name."""
    environ = os.environ if environ is None else environ
    return {field: environ[prefix + key] for key, field in ENV_FIELDS.items() if environ.get(prefix + key)}


def default_profile_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """`~/.config/m365-mock/client.toml`, else `client.ini` (`$XDG_CONFIG_HOME` honoured) if either exists."""
    environ = os.environ if environ is None else environ
    base = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "m365-mock"
    for name in ("client.toml", "client.ini"):
        if (base / name).is_file():
            return base / name
    return None


def profile_values(path: str | os.PathLike[str], name: str = "default") -> dict[str, Any]:
    """Section `name` of a profile file, keys normalised to field names, relative paths resolved."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read profile file {path}: {exc.strerror or exc}") from None
    sections: dict[str, Any]
    if path.suffix.lower() == ".toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        nested = document.get("profiles")
        profiles: dict[str, Any] = nested if isinstance(nested, dict) else document
        sections = {k: v for k, v in profiles.items() if isinstance(v, dict)}
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as exc:
            raise ConfigError(f"{path} is not a valid INI file: {exc}") from None
        sections = {s: dict(parser[s]) for s in parser.sections()}
    if name not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise ConfigError(f"profile '{name}' is not in {path} (profiles there: {known})")
    values: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(ClientSettings)}
    for key, value in sections[name].items():
        field = key.strip().lower().replace("-", "_")
        field = PROFILE_ALIASES.get(field, field)
        if field not in fields:
            raise ConfigError(f"unknown key '{key}' in profile '{name}' of {path}")
        if field in PATH_FIELDS and value:
            value = str((path.parent / Path(str(value)).expanduser()).resolve())
        values[field] = value
    return values


def read_connection(connection: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """An emulator's connection facts: the mapping itself, or read from connection.json (or its folder)."""
    if isinstance(connection, Mapping):
        return dict(connection)
    path = Path(connection).expanduser()
    if path.is_dir():
        path = path / "connection.json"
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is the emulator running (`m365-mock serve`)?") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(facts, dict) or "base_url" not in facts:
        raise ConfigError(f"{path} is not an emulator's connection.json")
    return facts


def emulator_values(connection: Mapping[str, Any] | str | os.PathLike[str], app_id: str | None = None) -> dict:
    """Setting values (tenant, client_id, client_secret, login_url, graph_url, ca_file) from connection facts."""
    facts = read_connection(connection)
    apps = [a for a in facts.get("apps") or [] if isinstance(a, dict)]
    if app_id is not None:
        app = next((a for a in apps if str(a.get("app_id", "")).lower() == app_id.lower()), None)
        if app is None:
            raise ConfigError(f"the emulator has no app '{app_id}'")
    else:
        app = next((a for a in apps if a.get("client_secret")), apps[0] if apps else None)
        if app is None:
            raise ConfigError("the emulator's connection facts list no application")
    tenants = facts.get("tenants") or []
    tenant = app.get("tenant_id") or (tenants[0]["id"] if tenants else None)
    base = str(facts["base_url"]).rstrip("/")
    return {
        "tenant": tenant,
        "client_id": app["app_id"],
        "client_secret": app.get("client_secret"),
        "login_url": base,
        "graph_url": facts.get("graph_url") or f"{base}/v1.0",
        "ca_file": facts.get("ca_file"),
    }
