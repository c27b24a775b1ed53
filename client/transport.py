"""HTTP with what Microsoft's services expect of a daemon: a client-request-id, per-request TLS trust, and
retries on throttling (429) and unavailability (503, 504) that honour Retry-After within a bounded wait."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from m365_mock.client.errors import parse_retry_after
from m365_mock.client.settings import ClientSettings

log = logging.getLogger("client")

RETRY_STATUSES = frozenset({429, 503, 504})


class Transport:
    """Sends requests for one ClientSettings over a requests Session (shared, thread-safe for this use).

    `verify=` is passed on every call: requests lets REQUESTS_CA_BUNDLE override a Session's own `verify`.
    """

    def __init__(
        self,
        settings: ClientSettings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.sleep = sleep or time.sleep

    def close(self) -> None:
        if self.owns_session:
            self.session.close()

    def delay_for(self, response: requests.Response | None, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0-based): Retry-After, else exponential backoff."""
        if response is not None:
            after = parse_retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return after
        base = self.settings.retry_backoff * (2**retry)
        return base + random.uniform(0, base / 4)

    def request(
        self,
        method: str,
        url: str,
        *,
        auth: Callable[[], dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        retry_network_errors: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send, retrying 429/503/504 (any method) and, for GET or when asked, connection failures.

        `auth` gives headers per attempt (a token may be renewed while waiting). Returns the final response,
        whatever its status; raises requests' exceptions when the network fails for good.
        """
        settings = self.settings
        if retry_network_errors is None:
            retry_network_errors = method.upper() == "GET"
        request_id = str(uuid.uuid4())
        waited = 0.0
        retry = 0
        while True:
            sent = {"client-request-id": request_id, "Accept": "application/json", **(headers or {})}
            if auth is not None:
                sent.update(auth())
            if retry:
                sent["Retry-Attempt"] = str(retry)
            response = None
            failure: Exception | None = None
            try:
                response = self.session.request(
                    method, url, headers=sent, verify=settings.verify, timeout=settings.timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not retry_network_errors or retry >= settings.max_retries:
                    raise
                failure, reason = exc, type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES or retry >= settings.max_retries:
                    return response
                reason = f"HTTP {response.status_code}"
            delay = self.delay_for(response, retry)
            if waited + delay > settings.max_retry_wait:
                log.warning("%s %s: %s; giving up (would wait %.1f s more)", method, url, reason, delay)
                if failure is not None:
                    raise failure
                assert response is not None
                return response
            retry += 1
            log.info("%s %s: %s; retry %d in %.2f s", method, url, reason, retry, delay)
            self.sleep(delay)
            waited += delay
