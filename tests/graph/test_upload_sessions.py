"""Upload sessions: createUploadSession, ordered chunked PUTs to the pre-authenticated URL, cancel, expiry, and
the access policy checked on every chunk."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlsplit

import pytest

from tests.helpers import BASE, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
MB = 2**20
CHUNK = 1 * MB


@pytest.fixture
def draft(graph) -> dict:
    return graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Large file"}).get_json()


def open_session(graph, draft: dict, size: int, name: str = "big.bin", **extra) -> dict:
    response = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": name, "size": size, **extra}},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def put(client, url: str, data: bytes, start: int, total: int, **headers):
    parts = urlsplit(url)
    return client.put(
        f"{parts.path}?{parts.query}",
        data=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}",
            **headers,
        },
    )


def test_a_file_uploaded_in_chunks_is_attached_byte_identical(graph, client, draft):
    content = os.urandom(int(3.5 * MB))
    session = open_session(graph, draft, len(content), contentType="application/zip")
    assert session["@odata.context"] == f"{BASE}/v1.0/$metadata#microsoft.graph.uploadSession"
    assert session["nextExpectedRanges"] == ["0-"]
    assert session["uploadUrl"].startswith(f"{BASE}/api/v2.0/Users('")
    assert "AttachmentSessions('" in session["uploadUrl"] and "?authtoken=" in session["uploadUrl"]
    first = put(client, session["uploadUrl"], content[:CHUNK], 0, len(content))
    assert first.status_code == 200
    assert first.get_json()["nextExpectedRanges"] == [str(CHUNK)]
    client_response = None
    for start in range(CHUNK, len(content), CHUNK):
        client_response = put(client, session["uploadUrl"], content[start : start + CHUNK], start, len(content))
    assert client_response is not None and client_response.status_code == 201
    assert client_response.get_data() == b""
    location = client_response.headers["Location"]
    assert "/Attachments('" in location
    attachment_id = location.rsplit("Attachments('", 1)[1].rstrip("')")
    raw = graph.get(f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{attachment_id}/$value")
    assert hashlib.sha256(raw.get_data()).hexdigest() == hashlib.sha256(content).hexdigest()
    meta = graph.get(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{attachment_id}?$select=name,size"
    ).get_json()
    assert meta["name"] == "big.bin" and meta["size"] == len(content)
    assert graph.get(f"/users/{SUPPORT}/messages/{draft['id']}").get_json()["hasAttachments"] is True


def test_chunks_out_of_order_overlapping_or_mismatched_are_refused(graph, client, draft):
    content = os.urandom(3 * MB)
    url = open_session(graph, draft, len(content))["uploadUrl"]
    gap = put(client, url, content[CHUNK : 2 * CHUNK], CHUNK, len(content))
    assert error_of(gap) == (
        400,
        "ErrorInvalidContentRange",
        f"The chunk starts at byte {CHUNK}; the upload expects byte 0 next.",
    )
    assert put(client, url, content[:CHUNK], 0, len(content)).status_code == 200
    overlap = put(client, url, content[CHUNK // 2 : CHUNK + CHUNK // 2], CHUNK // 2, len(content))
    assert error_of(overlap)[:2] == (400, "ErrorInvalidContentRange")
    wrong_total = put(client, url, content[CHUNK : 2 * CHUNK], CHUNK, len(content) + 1)
    assert error_of(wrong_total)[:2] == (400, "ErrorInvalidContentRange")
    short = client.put(
        urlsplit(url).path + "?" + urlsplit(url).query,
        data=b"x" * 10,
        headers={"Content-Range": f"bytes {CHUNK}-{2 * CHUNK - 1}/{len(content)}"},
    )
    assert error_of(short)[:2] == (400, "ErrorInvalidContentRange")
    missing = client.put(urlsplit(url).path + "?" + urlsplit(url).query, data=b"x")
    assert error_of(missing)[:2] == (400, "ErrorInvalidContentRange")
    # The refusals changed nothing: the upload goes on from where it was.
    rest = None
    for start in range(CHUNK, len(content), CHUNK):
        rest = put(client, url, content[start : start + CHUNK], start, len(content))
    assert rest is not None and rest.status_code == 201


def test_session_sizes_outside_2_to_150_mb_are_refused(graph, draft):
    small = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "small.txt", "size": 1000}},
    )
    assert error_of(small)[:2] == (400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
    large = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "huge.iso", "size": 151 * MB}},
    )
    assert error_of(large) == (400, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
    misspelt = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "a", "sizee": 3 * MB}},
    )
    assert error_of(misspelt)[:2] == (400, "RequestBodyRead")


def test_cancel_then_the_url_is_gone(graph, client, draft):
    url = open_session(graph, draft, 3 * MB)["uploadUrl"]
    parts = urlsplit(url)
    assert client.delete(f"{parts.path}?{parts.query}").status_code == 204
    after = put(client, url, b"x" * CHUNK, 0, 3 * MB)
    assert error_of(after)[:2] == (404, "ErrorItemNotFound")


def test_a_url_with_another_token_or_session_is_not_found(graph, client, draft):
    url = open_session(graph, draft, 3 * MB)["uploadUrl"]
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert error_of(put(client, forged, b"x" * CHUNK, 0, 3 * MB))[:2] == (404, "ErrorItemNotFound")
    other = open_session(graph, draft, 3 * MB)["uploadUrl"]
    token_of_other = other.split("?authtoken=")[1]
    swapped = url.split("?authtoken=")[0] + "?authtoken=" + token_of_other
    assert error_of(put(client, swapped, b"x" * CHUNK, 0, 3 * MB))[:2] == (404, "ErrorItemNotFound")


def test_a_session_expires_on_the_emulators_clock(graph, client, draft, clock):
    url = open_session(graph, draft, 3 * MB)["uploadUrl"]
    clock.advance(3 * 3600)
    assert error_of(put(client, url, b"x" * CHUNK, 0, 3 * MB))[:2] == (404, "ErrorItemNotFound")


def test_the_access_policy_is_checked_on_every_chunk(graph, client, draft, admin, demo_app):
    url = open_session(graph, draft, 3 * MB)["uploadUrl"]
    assert put(client, url, b"x" * CHUNK, 0, 3 * MB).status_code == 200
    admin.policy(demo_app.app_id, "cctr_sec_group@contoso.onmicrosoft.com", "DenyAccess")
    status, code, message = error_of(put(client, url, b"x" * CHUNK, CHUNK, 3 * MB))
    assert (status, code) == (403, "ErrorAccessDenied") and "[RAOP]" in message


def draft_app_id(emulator) -> str:
    return next(iter(emulator.directory.tenants[0].applications.values())).app_id


def test_no_bearer_token_is_needed_and_the_chunks_are_logged(graph, client, draft, emulator):
    url = open_session(graph, draft, 3 * MB)["uploadUrl"]
    response = put(client, url, b"x" * CHUNK, 0, 3 * MB)
    assert response.status_code == 200
    [record] = emulator.log.query(limit=1)
    assert record.method == "PUT" and "AttachmentSessions" in record.path and record.status == 200
    assert record.app_id == draft_app_id(emulator) and record.mailbox == SUPPORT
