"""Directory users: `GET /users`, `GET /users/$count` and `GET /users/{id | userPrincipalName}`.

Every mailbox of the tenant (user or shared: each has its user account) is a user. An app-only token needs
`User.ReadBasic.All` or `User.Read.All`; Exchange's access policies and RBAC do not scope directory reads. Errors
are Entra ID's (`Authorization_RequestDenied`, `Request_ResourceNotFound`, `Request_BadRequest`, ...), not
Exchange's. Query options the route does not take are refused, never ignored.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response

from m365_mock import faultpoint
from m365_mock.graph import errors
from m365_mock.graph.query import directory
from m365_mock.graph.routes import graph, graph_json, verify_bearer
from m365_mock.identity.tokens import VerifiedToken
from m365_mock.state import access
from m365_mock.state.access import Decision, Operation
from m365_mock.state.directory import Mailbox, Tenant
from m365_mock.web import DECISION, TOKEN, current_emulator, current_request, origin_of

_LIST_OPTIONS = frozenset({"$select", "$filter", "$top", "$count", "$skiptoken", "$search"})
_COUNT_OPTIONS = frozenset({"$filter", "$search"})
_ENTITY_OPTIONS = frozenset({"$select"})
COUNT_TYPE = "text/plain"


def authorize_directory() -> tuple[VerifiedToken, Decision]:
    """Token, then the directory permission (User.ReadBasic.All or User.Read.All); both left for the request log."""
    http = current_request()
    emulator = current_emulator()
    token = http.environ[TOKEN] = verify_bearer(emulator, http)
    if emulator.faults.at_gate:
        faultpoint.at_gate(emulator, http.environ, tenant=token.tenant, app_id=token.app_id, operation="read directory")
    decision = access.decide_directory(token.app_id, token.roles, Operation.READ_DIRECTORY)
    http.environ[DECISION] = decision
    if not decision.allowed:
        raise errors.AuthorizationRequestDenied()
    return token, decision


def user_json(mailbox: Mailbox) -> dict[str, Any]:
    """Every property the emulator knows of the user behind a mailbox, in Graph's default order, then the rest."""
    return {
        "businessPhones": [],
        "displayName": mailbox.display_name,
        "givenName": None,
        "jobTitle": None,
        "mail": mailbox.address,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": None,
        "userPrincipalName": mailbox.address,
        "id": mailbox.id,
        "mailNickname": mailbox.address.partition("@")[0],
        "proxyAddresses": [f"SMTP:{mailbox.address}", *(f"smtp:{alias}" for alias in mailbox.aliases)],
        "userType": "Member",
    }


def _project(user: dict[str, Any], select: list[str] | None, full: bool) -> dict[str, Any]:
    """The properties asked for (the default set without $select); without User.Read.All, only the basic
    profile has values: the other properties come back empty."""
    names = select or directory.DEFAULT_PROPERTIES
    if full:
        return {name: user[name] for name in names}
    return {
        name: user[name] if name in directory.BASIC_PROPERTIES else ([] if isinstance(user[name], list) else None)
        for name in names
    }


def _refuse_unknown_options(allowed: frozenset[str]) -> None:
    for name in current_request().args:
        if name not in allowed:
            raise errors.DirectoryBadRequest(f"'{name}' is not supported by the service.")


def _eventual() -> bool:
    return current_request().headers.get("ConsistencyLevel", "").strip().lower() == "eventual"


def _filtered(tenant: Tenant, *, count_asked: bool) -> list[dict[str, Any]]:
    """The tenant's users (ordered by id) that the request's $filter keeps; $search refused as Entra refuses it."""
    args, eventual = current_request().args, _eventual()
    if "$search" in args:
        if not eventual:
            raise errors.SearchNeedsConsistencyLevel()
        raise errors.DirectoryBadRequest("'$search' is not supported by the service.")  # fidelity: chosen
    users = [user_json(m) for m in sorted(tenant.mailboxes.values(), key=lambda m: m.id)]
    text = args.get("$filter")
    if text is None:
        return users
    flt = directory.parse_filter(text)
    if flt.advanced is not None and not (eventual and count_asked):
        raise errors.UnsupportedQuery(f"Operator '{flt.advanced}' {directory.ADVANCED_HINT}")
    return [user for user in users if flt.matches(user)]


def _count_option() -> bool:
    text = current_request().args.get("$count")
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise errors.DirectoryBadRequest(f"'{text}' is not a valid count option.")
    return text.lower() == "true"


@graph.get("/users")
def list_users() -> Response:
    token, decision = authorize_directory()
    _refuse_unknown_options(_LIST_OPTIONS)
    http = current_request()
    args = http.args
    select = directory.parse_select(args["$select"]) if "$select" in args else None
    top = directory.parse_top(args["$top"]) if "$top" in args else directory.DEFAULT_PAGE
    offset = directory.parse_skip_token(args["$skiptoken"]) if "$skiptoken" in args else 0
    count = _count_option()
    users = _filtered(token.tenant, count_asked=count)
    tail = f"users({','.join(select)})" if select else "users"
    payload: dict[str, Any] = {"@odata.context": f"{origin_of(http)}/v1.0/$metadata#{tail}"}
    if count and _eventual():  # without ConsistencyLevel, Entra ignores $count=true
        payload["@odata.count"] = len(users)
    if offset + top < len(users):
        params = tuple((k, v) for k, v in args.items(multi=True) if k != "$skiptoken")
        payload["@odata.nextLink"] = _next_link(origin_of(http), params, directory.skip_token(offset + top))
    payload["value"] = [_project(user, select, decision.content_visible) for user in users[offset : offset + top]]
    return graph_json(payload)


@functools.lru_cache(maxsize=256)
def _next_link(origin: str, params: tuple[tuple[str, str], ...], token: str) -> str:
    """`/users` with the request's parameters and the next page's `$skiptoken`, `$` kept as Entra writes it."""
    query = urlencode([*params, ("$skiptoken", token)], quote_via=lambda text, *_: quote(text, safe="$"))
    return f"{origin}/v1.0/users?{query}"


@graph.get("/users/$count")
def count_users() -> Response:
    token, _ = authorize_directory()
    _refuse_unknown_options(_COUNT_OPTIONS)
    if not _eventual():
        raise errors.CountNotSupported()
    return Response(str(len(_filtered(token.tenant, count_asked=True))), content_type=COUNT_TYPE)


@graph.get("/users/<user>")
def get_user(user: str) -> Response:
    token, decision = authorize_directory()
    _refuse_unknown_options(_ENTITY_OPTIONS)
    http = current_request()
    select = directory.parse_select(http.args["$select"]) if "$select" in http.args else None
    mailbox = _by_id_or_upn(token.tenant, user)
    if mailbox is None:
        raise errors.ResourceNotFound(user)
    tail = f"users({','.join(select)})/$entity" if select else "users/$entity"
    payload = {"@odata.context": f"{origin_of(http)}/v1.0/$metadata#{tail}"}
    payload.update(_project(user_json(mailbox), select, decision.content_visible))
    return graph_json(payload)


def _by_id_or_upn(tenant: Tenant, key: str) -> Mailbox | None:
    """The user whose object id or user principal name is `key` (any case); an alias or proxy address is not."""
    mailbox = tenant.mailbox(key)
    if mailbox is None:
        return None
    folded = key.strip().lower()
    return mailbox if folded in (mailbox.id.lower(), mailbox.address.lower()) else None
