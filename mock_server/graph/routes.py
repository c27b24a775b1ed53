"""Graph mail v1.0 routes: thin handlers that authorize, call the mail store, and serialize."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response
from werkzeug.wrappers import Request as WerkzeugRequest

from m365_mock import faultpoint
from m365_mock.emulator import Emulator
from m365_mock.graph import body, errors, kql, query
from m365_mock.graph.attachmentjson import attachment_json, parse_expand
from m365_mock.graph.query import plan
from m365_mock.graph.serializers import folder_json, message_fragment, message_json
from m365_mock.identity.tokens import TokenRejected, VerifiedToken
from m365_mock.state import access
from m365_mock.state.access import Decision, Operation
from m365_mock.state.directory import Mailbox
from m365_mock.state.mailstore import (
    Folder,
    FolderExists,
    ItemNotFound,
    MailboxStore,
    MalformedId,
    Message,
)
from m365_mock.state.throttling import CONCURRENCY, Throttled
from m365_mock.web import (
    DECISION,
    GRAPH_JSON_TYPE,
    THROTTLE_RELEASE,
    TOKEN,
    current_emulator,
    current_request,
    json_response,
    origin_of,
)

graph = Blueprint("graph", __name__, url_prefix="/v1.0")

DEFAULT_PAGE = 10
_PREFER_TEXT = re.compile(r'outlook\.body-content-type\s*=\s*"?text"?', re.I)
_PREFER_IMMUTABLE = re.compile(r'IdType\s*=\s*"?ImmutableId"?', re.I)


@dataclass
class MailboxRequest:
    """An authorized request on one mailbox: who asks, for which mailbox, and the decision that let it in."""

    http: WerkzeugRequest
    token: VerifiedToken
    mailbox: Mailbox
    store: MailboxStore
    decision: Decision
    user_segment: str

    @property
    def immutable_ids(self) -> bool:
        return bool(_PREFER_IMMUTABLE.search(self.http.headers.get("Prefer", "")))

    def context(self, tail: str) -> str:
        return _context(origin_of(self.http), self.user_segment, tail)


@functools.lru_cache(maxsize=1024)
def _context(origin: str, user: str, tail: str) -> str:
    """`@odata.context`: the emulator's $metadata URL for the user as addressed (`users('a%40b.com')`)."""
    return f"{origin}/v1.0/$metadata#users('{quote(user, safe='')}')/{tail}"


def verify_bearer(emulator: Emulator, http: WerkzeugRequest) -> VerifiedToken:
    """The request's bearer token, verified; InvalidAuthenticationToken (401) otherwise."""
    header = http.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    try:
        return emulator.verifier.verify(token)
    except TokenRejected as rejected:
        raise errors.InvalidAuthenticationToken(rejected.message) from None


def bearer_token() -> VerifiedToken:
    return verify_bearer(current_emulator(), current_request())


def mailbox_request(
    emulator: Emulator, http: WerkzeugRequest, token: VerifiedToken, user: str, operation: Operation
) -> MailboxRequest:
    """The mailbox `user` names and the access decision for `operation` on it (allowed or not); the fault rules
    about the request's app, mailbox or operation are matched first."""
    mailbox = token.tenant.mailbox(user)
    if emulator.faults.at_gate:
        faultpoint.at_mailbox_gate(emulator, http.environ, token, operation.label, user, mailbox)
    if mailbox is None:
        raise errors.InvalidUser(user)
    decision = access.decide(
        token.tenant,
        token.app_id,
        token.roles,
        mailbox,
        operation,
        now=emulator.clock.now(),
        nested_groups=emulator.settings.nested_group_membership,
    )
    return MailboxRequest(http, token, mailbox, emulator.mail.store(mailbox), decision, user)


def authorize(user: str, operation: Operation) -> MailboxRequest:
    """Token, then mailbox, then the access decision: the one gate of every mailbox route.

    The token and the decision are left in the environ for the request log.
    """
    emulator = current_emulator()
    http = current_request()
    token = http.environ[TOKEN] = verify_bearer(emulator, http)
    req = mailbox_request(emulator, http, token, user, operation)
    http.environ[DECISION] = req.decision
    if not req.decision.allowed:
        raise errors.AccessDenied(req.decision.message)
    admit(emulator, req)
    return req


_UPLOAD_METHODS = frozenset({"PATCH", "POST", "PUT"})


def admit(emulator: Emulator, req: MailboxRequest) -> None:
    """Count the request against the app's limits on the mailbox (429 when over one); the request's concurrency
    slot is given back by the request envelope when the answer is made."""
    http = req.http
    upload = (http.content_length or 0) if http.method in _UPLOAD_METHODS else 0
    try:
        release = emulator.throttle.admit_mailbox_request(req.token.tenant.id, req.token.app_id, req.mailbox.id, upload)
    except Throttled as over:
        if over.kind == CONCURRENCY:
            raise errors.MailboxConcurrency(over.retry_after) from None
        raise errors.TooManyRequests(over.retry_after) from None
    if release is not None:
        http.environ[THROTTLE_RELEASE] = release


def allow_query(req: MailboxRequest, *names: str) -> None:
    """Refuse any query parameter outside `names` (compared ignoring case, as OData's are)."""
    args = req.http.args
    if args:
        allowed = {n.lower() for n in names}
        for key in args:
            if key.lower() not in allowed:
                raise errors.UnsupportedQueryOption(key, names)


LIST_OPTIONS = ("$select", "$top", "$skip", "$count", "$filter", "$orderby", "$search", "$expand")


def find_folder(req: MailboxRequest, key: str) -> Folder:
    try:
        return req.store.folder(key)
    except MalformedId:
        raise errors.InvalidIdMalformed() from None
    except ItemNotFound:
        raise errors.ItemNotFound() from None


def find_message(req: MailboxRequest, key: str, folder: Folder | None = None) -> Message:
    try:
        message = req.store.message(key)
    except MalformedId:
        raise errors.InvalidIdMalformed() from None
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    if folder is not None and message.folder_id != folder.id:
        raise errors.ItemNotFound()
    return message


def graph_json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(payload, status, content_type=GRAPH_JSON_TYPE, headers=headers)


def wants_text_body(http: WerkzeugRequest) -> dict[str, str]:
    if _PREFER_TEXT.search(http.headers.get("Prefer", "")):
        return {"Preference-Applied": 'outlook.body-content-type="text"'}
    return {}


# ---------------------------------------------------------------- /me


@graph.route("/me", defaults={"rest": ""}, methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
@graph.route("/me/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
def me(rest: str) -> Response:
    bearer_token()
    raise errors.MeNotDelegated()


# ---------------------------------------------------------------- folders


@graph.get("/users/<user>/mailFolders")
def list_folders(user: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    return _folder_page(req, req.store.root, "mailFolders")


@graph.get("/users/<user>/mailFolders/<folder_id>/childFolders")
def list_child_folders(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    folder = find_folder(req, folder_id)
    return _folder_page(req, folder, f"mailFolders('{folder_id}')/childFolders")


def _folder_page(req: MailboxRequest, parent: Folder, tail: str) -> Response:
    allow_query(req, "includeHiddenFolders", "$top", "$skip", "$count")
    args = req.http.args
    include_hidden = args.get("includeHiddenFolders", "").lower() == "true"
    top = query.parse_top(args["$top"]) if "$top" in args else DEFAULT_PAGE
    skip = query.parse_skip(args["$skip"]) if "$skip" in args else 0
    folders = req.store.child_folders(parent, include_hidden)
    payload: dict[str, Any] = {"@odata.context": req.context(tail)}
    if args.get("$count", "").lower() == "true":
        payload["@odata.count"] = len(folders)
    if skip + top < len(folders):
        payload["@odata.nextLink"] = next_link(skip + top, top, req.http)
    with req.store.lock:
        payload["value"] = [folder_json(f, req.store) for f in folders[skip : skip + top]]
    return graph_json(payload)


@graph.get("/users/<user>/mailFolders/<folder_id>")
def get_folder(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    allow_query(req)
    folder = find_folder(req, folder_id)
    with req.store.lock:
        return graph_json(folder_json(folder, req.store, context=req.context("mailFolders/$entity")))


@graph.post("/users/<user>/mailFolders")
def create_root_folder(user: str) -> Response:
    req = authorize(user, Operation.WRITE)
    return _create_folder(req, req.store.root)


@graph.post("/users/<user>/mailFolders/<folder_id>/childFolders")
def create_child_folder(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.WRITE)
    return _create_folder(req, find_folder(req, folder_id))


def _create_folder(req: MailboxRequest, parent: Folder) -> Response:
    fields = body.fold_keys(body.json_body())
    unknown = [name for key, (name, _) in fields.items() if key not in ("displayname", "ishidden")]
    if unknown:
        raise errors.RequestBodyRead(
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.mailFolder'. Make sure to only use "
            "property names that are defined by the type or mark the type as open type."
        )
    name = body.expect_string("displayName", fields.get("displayname", ("displayName", None))[1])
    if not name or not name.strip():
        raise errors.InvalidParameter("The value of the parameter 'DisplayName' is empty.")  # fidelity: chosen
    hidden = body.expect_bool("isHidden", fields["ishidden"][1]) if "ishidden" in fields else False
    try:
        folder = req.store.create_folder(parent, name.strip(), hidden)
    except FolderExists:
        raise errors.FolderExists() from None
    with req.store.lock:
        return graph_json(folder_json(folder, req.store, context=req.context("mailFolders/$entity")), 201)


# ---------------------------------------------------------------- message listing


def next_link(skip: int, top: int, http: WerkzeugRequest) -> str:
    """The request's absolute URL with `$skip`/`$top` advanced; other parameters kept as sent."""
    params = tuple((k, v) for k, v in http.args.items(multi=True) if k not in ("$skip", "$top"))
    return _link(origin_of(http), http.path, params, skip, top)


@functools.lru_cache(maxsize=1024)
def _link(origin: str, path: str, params: tuple[tuple[str, str], ...], skip: int, top: int) -> str:
    query = urlencode([*params, ("$top", str(top)), ("$skip", str(skip))], quote_via=quote)
    return f"{origin}{quote(path, safe='/@')}?{query}"


# Query options parse the same way every time: daemons repeat the same few queries, so keep their parses.
# The parsed values are never changed by the routes.
_select = functools.lru_cache(maxsize=512)(query.parse_select)
_filter = functools.lru_cache(maxsize=512)(query.parse_filter)
_orderby = functools.lru_cache(maxsize=512)(query.parse_orderby)
_search = functools.lru_cache(maxsize=512)(kql.parse_search)
_expand = functools.lru_cache(maxsize=128)(parse_expand)


@graph.get("/users/<user>/messages")
def list_messages(user: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    return graph_page(*message_page(req, None, "messages"))


@graph.get("/users/<user>/mailFolders/<folder_id>/messages")
def list_folder_messages(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    folder = find_folder(req, folder_id)
    return graph_page(*message_page(req, folder, folder_messages_tail(folder_id)))


def folder_messages_tail(folder_id: str) -> str:
    return f"mailFolders('{folder_id}')/messages"


def graph_page(body: str, headers: dict[str, str]) -> Response:
    return Response(body, content_type=GRAPH_JSON_TYPE, headers=headers)


@dataclass(frozen=True)
class ListQuery:
    """A message list's query options, parsed and checked as Graph checks them."""

    select: list[str] | None
    top: int
    skip: int
    count: bool
    flt: query.FilterExpr | None
    orderby: list[tuple[str, bool]]
    search: kql.SearchExpr | None
    expand: bool = False
    expand_select: list[str] | None = None  # `$expand=attachments($select=...)`; None for every property


def list_query(req: MailboxRequest) -> ListQuery:
    """The query options of a message list (or of its `$count`), with Graph's errors for bad or clashing ones."""
    args = req.http.args.to_dict()
    select = _select(args["$select"]) if "$select" in args else None
    expand = "$expand" in args
    expand_select = _expand(args["$expand"]) if expand else None
    top = query.parse_top(args["$top"]) if "$top" in args else DEFAULT_PAGE
    skip = query.parse_skip(args["$skip"]) if "$skip" in args else 0
    count = query.parse_count(args.get("$count", ""))
    flt = _filter(args["$filter"]) if args.get("$filter") else None
    orderby = _orderby(args["$orderby"]) if args.get("$orderby") else []
    search = _search(args["$search"]) if args.get("$search") else None
    if search is not None:
        if flt is not None:
            raise errors.SearchWithFilter()
        if orderby:
            raise errors.SearchWithOrderBy()
        if not req.decision.content_visible:
            raise errors.AccessDenied()
    query.check_filter_orderby(flt, orderby)
    return ListQuery(select, top, skip, count, flt, orderby, search, expand, expand_select)


def message_page(req: MailboxRequest, folder: Folder | None, tail: str) -> tuple[str, dict[str, str]]:
    """One page of messages (of a folder, or of the mailbox) as the JSON text and extra headers of the answer."""
    allow_query(req, *LIST_OPTIONS)
    http = req.http
    options = list_query(req)
    select, top, skip, count = options.select, options.top, options.skip, options.count
    page = plan.list_page(
        req.store,
        folder,
        skip=skip,
        top=top,
        count=count,
        flt=options.flt,
        orderby=options.orderby,
        search=options.search,
    )
    context = req.context(tail + (f"({','.join(select)})" if select else ""))
    payload: dict[str, Any] = {"@odata.context": context}
    if count:
        payload["@odata.count"] = page.total
    if page.has_more:
        payload["@odata.nextLink"] = next_link(skip + top, top, http)
    headers = wants_text_body(http)
    as_text, visible, immutable = bool(headers), req.decision.content_visible, req.immutable_ids
    with req.store.lock:
        if options.expand:
            if not visible:
                raise errors.AccessDenied()
            expanded = (
                with_attachments(
                    message_json(m, select=select, as_text=as_text, immutable_ids=immutable), m, options.expand_select
                )
                for m in page.items
            )
            items = ",".join(json.dumps(e, separators=(",", ":")) for e in expanded)
        else:
            items = ",".join(
                message_fragment(m, select=select, as_text=as_text, content_visible=visible, immutable_ids=immutable)
                for m in page.items
            )
    head = json.dumps(payload, separators=(",", ":"))
    return f'{head[:-1]},"value":[{items}]}}', headers


# ---------------------------------------------------------------- one message


_OTHER_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def static_segment_route(rule: str, endpoint: str, view: Callable, methods: tuple[str, ...] = ("GET",)) -> None:
    """Register a static segment where a message id could stand (`messages/$count`, `messages/delta`).

    werkzeug tries a static rule before `messages/<message_id>`, but only for the methods it has; so every other
    method gets a rule here too, answered as a method not allowed, never read as a malformed message id.
    """
    graph.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=list(methods))
    refuse_other_methods(rule, endpoint, methods)


def refuse_other_methods(rule: str, endpoint: str, methods: tuple[str, ...]) -> None:
    """405 for every method of `rule` but `methods`, ahead of any rule with a variable in that place."""
    graph.add_url_rule(
        rule,
        endpoint=f"{endpoint}_not_allowed",
        view_func=_method_not_allowed,
        methods=[m for m in _OTHER_METHODS if m not in methods],
    )


def _method_not_allowed(**_: str) -> Response:
    raise errors.MethodNotAllowed()


def _message_routes(rule: str, **options: Any) -> Callable:
    """Register a message route both under /users/{u}/messages and /users/{u}/mailFolders/{f}/messages."""

    def register(view: Callable) -> Callable:
        graph.add_url_rule(f"/users/<user>/messages/<message_id>{rule}", view_func=view, **options)
        graph.add_url_rule(
            f"/users/<user>/mailFolders/<folder_id>/messages/<message_id>{rule}",
            endpoint=f"{view.__name__}_in_folder",
            view_func=view,
            **options,
        )
        return view

    return register


def _message_in_scope(req: MailboxRequest, message_id: str, folder_id: str | None) -> Message:
    folder = find_folder(req, folder_id) if folder_id is not None else None
    return find_message(req, message_id, folder)


def _one(req: MailboxRequest, message: Message, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    args = req.http.args
    select = query.parse_select(args["$select"]) if "$select" in args else None
    expand = "$expand" in args
    expand_select = _expand(args["$expand"]) if expand else None
    if expand and not req.decision.content_visible:
        raise errors.AccessDenied()
    with req.store.lock:
        payload = message_json(
            message,
            select=select,
            as_text=bool(headers),
            content_visible=req.decision.content_visible,
            immutable_ids=req.immutable_ids,
            context=req.context("messages/$entity"),
        )
        if expand:
            with_attachments(payload, message, expand_select)
    return graph_json(payload, status, headers=headers)


def with_attachments(payload: dict[str, Any], message: Message, select: list[str] | None) -> dict[str, Any]:
    """`payload` with the message's attachments (`$expand=attachments`), each with `select`ed properties."""
    payload["attachments"] = [attachment_json(a, select=select) for a in message.attachments]
    return payload


@_message_routes("", methods=["GET"])
def get_message(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    allow_query(req, "$select", "$expand")
    return _one(req, _message_in_scope(req, message_id, folder_id), headers=wants_text_body(req.http))


@_message_routes("", methods=["PATCH"])
def update_message(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    message = _message_in_scope(req, message_id, folder_id)
    fields = body.read_message_fields(body.json_body())
    if not message.is_draft:
        refused = [name for name in ("subject", "body_content", "internet_message_id", "reply_to") if name in fields]
        if refused:
            raise errors.InvalidPropertyUpdateSentMessage()

    def apply(target: Message) -> None:
        for name, value in fields.items():
            if name == "body_content":
                target.set_body(value, fields["body_type"])
            elif name != "body_type":
                setattr(target, name, value)

    try:
        updated = req.store.update_message(message.id, apply)
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return _one(req, updated)


@_message_routes("", methods=["DELETE"])
def delete_message(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    message = _message_in_scope(req, message_id, folder_id)
    try:
        req.store.delete_message(message.id)
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return Response(status=204)


def _destination(req: MailboxRequest) -> Folder:
    fields = body.fold_keys(body.json_body())
    value = fields.get("destinationid", ("DestinationId", None))[1]
    destination = body.expect_string("DestinationId", value)
    if not destination:
        raise errors.InvalidParameter("The value of the parameter 'DestinationId' is empty.")  # fidelity: chosen
    return find_folder(req, destination)


@_message_routes("/move", methods=["POST"])
def move_message(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    message = _message_in_scope(req, message_id, folder_id)
    destination = _destination(req)
    try:
        moved = req.store.move_message(message.id, destination, keep_id=req.immutable_ids)
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return _one(req, moved, 201)


@_message_routes("/copy", methods=["POST"])
def copy_message(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    message = _message_in_scope(req, message_id, folder_id)
    destination = _destination(req)
    try:
        copied = req.store.copy_message(message.id, destination)
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return _one(req, copied, 201)
