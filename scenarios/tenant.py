"""The tenant a scenario imports, as the control API takes it: the demo, a tenant file (read strictly) or the
inline tenant, with certificate files read here (the control API reads no files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365_mock.state.tenantfile.problems import Path as KeyPath
from m365_mock.state.tenantfile.problems import Problem, refusal
from m365_mock.state.tenantfile.source import Source

if TYPE_CHECKING:
    from m365_mock.scenarios.model import Scenario


def tenant_data(scenario: Scenario) -> dict[str, Any]:
    """The tenant a scenario imports, as the control API takes it: the demo, a tenant file (read strictly) or the
    inline tenant, with each certificate given as a `file` read here (relative to the file that names it) and sent
    as `pem`, since the control API reads no files. ConfigError naming the place of what cannot be read."""
    from m365_mock.state.tenantfile import demo_tenant_data
    from m365_mock.state.tenantfile.reader import read_source

    tenant = scenario.tenant
    if tenant == "demo":
        return demo_tenant_data()
    if isinstance(tenant, str):
        source = read_source(scenario.base_dir / tenant)
        return _certificates_as_pem(source.data, Path(source.name).parent, source, ())
    source = scenario.read_from or Source(str(scenario.source) if scenario.source else "scenario", tenant)
    return _certificates_as_pem(tenant, scenario.base_dir, source, ("tenant",))


def _certificates_as_pem(data: dict[str, Any], folder: Path, source: Source, prefix: KeyPath) -> dict[str, Any]:
    """`data` with every certificate `file` replaced by the `pem` it holds (a copy where anything changes)."""
    tenants = []
    for t, tenant in enumerate(data.get("tenants") or []):
        apps = []
        for a, app in enumerate(tenant.get("applications") or []):
            certificates = [
                _certificate_pem(cert, folder, source, (*prefix, "tenants", t, "applications", a, "certificates", c))
                for c, cert in enumerate(app.get("certificates") or [])
            ]
            apps.append({**app, "certificates": certificates} if "certificates" in app else app)
        tenants.append({**tenant, "applications": apps} if "applications" in tenant else tenant)
    return {**data, "tenants": tenants} if "tenants" in data else data


def _certificate_pem(cert: dict[str, Any], folder: Path, source: Source, where: KeyPath) -> dict[str, Any]:
    if "file" not in cert or "pem" in cert:
        return cert
    path = folder / cert["file"]
    try:
        pem = path.read_text(encoding="ascii")
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except (UnicodeDecodeError, ValueError):
        reason = "not a PEM certificate (not ASCII text)"
    else:
        return {**{k: v for k, v in cert.items() if k != "file"}, "pem": pem}
    problem = source.locate(Problem((*where, "file"), f"cannot read {path}: {reason}"))
    raise refusal([problem], source.name)
