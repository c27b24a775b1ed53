"""Rendered JSON of listed messages is kept for the next reader, within a bound, and never served stale."""

from __future__ import annotations

import json

from m365_mock.graph import serializers
from m365_mock.graph.serializers import RenderedCache, message_fragment, message_json
from tests.helpers import SUPPORT


def test_the_cache_keeps_the_most_recently_used_within_its_bound():
    cache = RenderedCache(max_chars=10)
    renders: list[str] = []

    def render(text: str):
        return lambda: renders.append(text) or text

    assert cache.get(("a",), render("aaaa")) == "aaaa"
    assert cache.get(("b",), render("bbbb")) == "bbbb"
    assert cache.get(("a",), render("never")) == "aaaa"  # a hit: not rendered again, and now the newest
    assert cache.get(("c",), render("cccc")) == "cccc"  # 12 characters: the least recently used (b) goes
    assert len(cache) == 2 and cache.chars == 8
    assert cache.get(("b",), render("bbbb")) == "bbbb"
    assert renders == ["aaaa", "bbbb", "cccc", "bbbb"]
    cache.get(("huge",), render("x" * 50))  # larger than the bound: served, and nothing else is kept
    assert len(cache) == 0 and cache.chars == 0


def test_a_listing_is_rendered_once_and_again_after_a_change(graph, deliver, monkeypatch):
    monkeypatch.setattr(serializers, "RENDERED", RenderedCache(max_chars=1_000_000))
    message = deliver(SUPPORT, subject="first")
    listed = graph.get(f"/users/{SUPPORT}/messages").get_json()["value"]
    assert len(serializers.RENDERED) == 1 and listed[0]["subject"] == "first"
    graph.get(f"/users/{SUPPORT}/messages")
    assert len(serializers.RENDERED) == 1
    graph.patch(f"/users/{SUPPORT}/messages/{message.id}", json={"isRead": True})
    listed = graph.get(f"/users/{SUPPORT}/messages").get_json()["value"]
    assert listed[0]["isRead"] is True and len(serializers.RENDERED) == 2  # the old rendering ages out
    graph.get(f"/users/{SUPPORT}/messages?$select=subject")
    assert len(serializers.RENDERED) == 3


def test_the_cache_is_bounded_however_many_messages_are_read(deliver, monkeypatch):
    cache = RenderedCache(max_chars=20_000)
    monkeypatch.setattr(serializers, "RENDERED", cache)
    messages = [deliver(SUPPORT, subject=f"message {i}") for i in range(60)]
    for message in messages:
        text = message_fragment(message)
        assert json.loads(text) == message_json(message)
    assert cache.chars <= 20_000 and len(cache) < len(messages)
