"""Hot paths: the two requests a mail daemon repeats most, answered without Flask's per-request machinery.

Getting a token and listing a page of messages are what daemons (and their load tests) do in a loop, and for
them Flask's request and application contexts, hooks and response objects cost about as much as the work
itself. This WSGI layer sits in front of the Flask app and answers them with the very functions the Flask
routes call (`token_answer`, `mailbox_request`, `message_page`).

It makes only the plain success answer. Whenever anything would make an error (a bad token or secret, an
unknown tenant or mailbox, a denied mailbox, bad OData, a body over the limit, an unexpected exception) it
leaves the request to Flask unchanged, so every error is still answered, logged and formatted in one place.
Nothing on these paths changes state before it succeeds, so answering twice is never visible.
`tests/test_hotpaths.py` checks that both ways give the same answers.

What a hot answer does not do: call a view function put into `app.view_functions` in place of the route's,
or leave a request context behind for `with app.test_client():` to inspect. Hooks and signal receivers are
honoured: with any of them present the hot paths step aside (`nothing_skipped`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable

from flask import Flask, signals
from werkzeug.wrappers import Request as WerkzeugRequest

from m365_mock.app import GRAPH_JSON_TYPE, JSON_TYPE, REFUSAL, graph_log_record
from m365_mock.emulator import Emulator
from m365_mock.graph.routes import find_folder, folder_messages_tail, mailbox_request, message_page, verify_bearer
from m365_mock.identity.routes import MULTI_TENANT_SEGMENTS, TOKEN_HEADERS, token_answer
from m365_mock.state.access import Operation

_TOKEN = re.compile(r"/([^/]+)/oauth2/(?:(v2\.0)/)?token")
_MESSAGES = re.compile(r"/v1\.0/users/([^/]+)/(?:mailFolders/([^/]+)/)?messages")
_TOKEN_HEADER_ITEMS = tuple(TOKEN_HEADERS.items())
_SCOPES = (None, "graph", "identity")  # the app's own hooks and those of the blueprints the hot routes belong to
_REQUEST_SIGNALS = (
    signals.request_started,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_pushed,
    signals.appcontext_popped,
    signals.appcontext_tearing_down,
)

Answer = tuple[str, list[tuple[str, str]], bytes]


class HotPaths:
    """WSGI middleware in front of `flask_app`: answer token requests and message listings when they succeed.

    `request_log_hook` is the app's after-request hook that writes the request log, which the hot paths do
    themselves. Set `enabled` to False to send everything to Flask.
    """

    def __init__(self, flask_app: Flask, emulator: Emulator, request_log_hook: Callable) -> None:
        self.app = flask_app.wsgi_app
        self.flask_app = flask_app
        self.emulator = emulator
        self.request_log_hook = request_log_hook
        self.enabled = True

    def nothing_skipped(self) -> bool:
        """Whether Flask would do nothing for these routes that the hot paths leave out.

        Checked on every request (a few dictionary lookups): a hook added at any time for every request
        (throttling, faults), a signal receiver or host checking turns the hot paths off rather than being
        skipped by them. The request-log hook is the one hook they stand in for.
        """
        flask_app = self.flask_app
        for registry in (
            flask_app.before_request_funcs,
            flask_app.teardown_request_funcs,
            flask_app.url_value_preprocessors,
        ):
            for scope in _SCOPES:
                if registry.get(scope):
                    return False
        for scope in _SCOPES:
            hooks = flask_app.after_request_funcs.get(scope)
            if hooks and (scope is not None or hooks != [self.request_log_hook]):
                return False
        if flask_app.teardown_appcontext_funcs or any(signal.receivers for signal in _REQUEST_SIGNALS):
            return False
        config = flask_app.config
        return not (config.get("TRUSTED_HOSTS") or config.get("SERVER_NAME"))

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        answer = None
        if self.enabled and REFUSAL not in environ and self.nothing_skipped():
            method = environ.get("REQUEST_METHOD")
            if method == "GET":
                answer = self._list_messages(environ)
            elif method == "POST":
                answer = self._token(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _list_messages(self, environ: dict) -> Answer | None:
        match = _MESSAGES.fullmatch(_path(environ))
        if match is None:
            return None
        user, folder_id = match.groups()
        http = WerkzeugRequest(environ)
        try:
            token = verify_bearer(self.emulator, http)
            req = mailbox_request(self.emulator, http, token, user, Operation.READ_BASIC)
            if not req.decision.allowed:
                return None
            if folder_id is None:
                text, extra = message_page(req, None, "messages")
            else:
                text, extra = message_page(req, find_folder(req, folder_id), folder_messages_tail(folder_id))
        except Exception:  # Flask's route answers it, the one way every error is answered
            return None
        self.emulator.log.append(graph_log_record(self.emulator, http, 200, token, req.decision))
        body = text.encode("utf-8")
        return "200 OK", [*extra.items(), *_json_headers(GRAPH_JSON_TYPE, body)], body

    def _token(self, environ: dict) -> Answer | None:
        match = _TOKEN.fullmatch(_path(environ))
        if match is None:
            return None
        segment, v2 = match.groups()
        if segment.lower() in MULTI_TENANT_SEGMENTS:
            return None
        length = environ.get("CONTENT_LENGTH", "")
        limit = self.flask_app.config.get("MAX_CONTENT_LENGTH")
        if not (length.isascii() and length.isdigit()) or (limit is not None and int(length) > limit):
            return None
        http = WerkzeugRequest(environ)
        try:
            data = http.get_data(cache=True)
        except Exception:  # a body shorter than announced: Flask's read finds nothing more and answers 400
            return None
        try:
            answer = token_answer(self.emulator, http, segment, 2 if v2 else 1)
        except Exception:  # Flask's route answers it, the one way every error is answered
            environ["wsgi.input"] = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
            return None
        body = json.dumps(answer, separators=(",", ":")).encode("utf-8")
        return "200 OK", [*_TOKEN_HEADER_ITEMS, *_json_headers(JSON_TYPE, body)], body


def _json_headers(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The headers werkzeug's Response adds, after the route's own, as Flask sends them."""
    return [("Content-Type", content_type), ("Content-Length", str(len(body)))]


def _path(environ: dict) -> str:
    """PATH_INFO as Flask routes it (WSGI's latin-1 text of the UTF-8 bytes); "" when it is not plain UTF-8."""
    raw = environ.get("PATH_INFO", "")
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return ""
