"""The pure rules: which Origins may open a socket, and how a Channels-1 reply is read."""

from __future__ import annotations

import pytest

from channelworks_interface import limits, messages


def _allowed(origin: str | None, host: str = "chat.example.com", *patterns: str) -> bool:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return limits.origin_allowed(
        headers, tuple(patterns), require_origin=False, trust_forwarded_host=False
    )


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("https://chat.example.com", "chat.example.com", True),
        ("http://chat.example.com", "chat.example.com", True),
        ("https://chat.example.com", "chat.example.com:443", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("http://localhost:3000", "localhost:8000", False),
        ("http://chat.example.com:8080", "chat.example.com", False),
        ("https://chat.example.com:8443", "chat.example.com", False),
        ("http://chat.example.com:80", "chat.example.com", True),
        ("http://chat.example.com", "chat.example.com:443", False),
        ("ftp://chat.example.com", "chat.example.com", False),
        ("chrome-extension://chat.example.com", "chat.example.com", False),
        ("https://evil.example", "chat.example.com", False),
        ("https://chat.example.com.evil.example", "chat.example.com", False),
        ("null", "chat.example.com", False),
        (None, "chat.example.com", True),
    ],
)
def test_by_default_only_the_same_host_may_connect(
    origin: str | None, host: str, allowed: bool
) -> None:
    assert _allowed(origin, host) is allowed


def test_patterns_follow_channels_origin_validator() -> None:
    patterns = ("https://app.example.com", ".trusted.example", "http://dev.local:3000")
    assert _allowed("https://app.example.com", "x", *patterns)
    assert not _allowed("http://app.example.com", "x", *patterns)
    assert _allowed("https://trusted.example", "x", *patterns)
    assert _allowed("http://a.b.trusted.example", "x", *patterns)
    assert not _allowed("https://untrusted.example", "x", *patterns)
    assert _allowed("http://dev.local:3000", "x", *patterns)
    assert not _allowed("http://dev.local:3001", "x", *patterns)
    assert _allowed("https://anything.example", "x", "*")


def test_a_missing_origin_can_be_required() -> None:
    headers = [(b"host", b"h")]
    assert not limits.origin_allowed(headers, (), require_origin=True, trust_forwarded_host=False)


@pytest.mark.parametrize(
    ("proto", "origin", "allowed"),
    [
        (b"https", "https://chat.example.com", True),
        (b"https", "http://chat.example.com", False),  # a plain page must not drive wss
        (b"http", "https://chat.example.com", False),
        (b"http", "http://chat.example.com", True),
    ],
)
def test_behind_a_trusted_proxy_the_scheme_must_match_too(
    proto: bytes, origin: str, allowed: bool
) -> None:
    headers = [
        (b"host", b"chat.example.com"),
        (b"x-forwarded-proto", proto),
        (b"origin", origin.encode()),
    ]
    assert (
        limits.origin_allowed(headers, (), require_origin=False, trust_forwarded_host=True)
        is allowed
    )


def test_forwarded_host_counts_only_behind_a_trusted_proxy() -> None:
    headers = [
        (b"host", b"interface.internal:8000"),
        (b"x-forwarded-host", b"chat.example.com"),
        (b"origin", b"https://chat.example.com"),
    ]
    assert limits.origin_allowed(headers, (), require_origin=False, trust_forwarded_host=True)
    assert not limits.origin_allowed(headers, (), require_origin=False, trust_forwarded_host=False)


@pytest.mark.parametrize(
    ("reply", "accept", "frames", "close"),
    [
        ({"accept": True}, True, [], None),
        ({"accept": False}, False, [], None),
        ({"text": "hi"}, None, [{"type": "websocket.send", "text": "hi"}], None),
        ({"bytes": b"1", "close": True}, None, [{"type": "websocket.send", "bytes": b"1"}], 1000),
        ({"close": 4004}, None, [], 4004),
        ({"close": False, "text": ""}, None, [{"type": "websocket.send", "text": ""}], None),
    ],
)
def test_websocket_replies_read_as_channels_1_did(
    reply: dict[str, object], accept: bool | None, frames: list[object], close: int | None
) -> None:
    wanted = messages.websocket_reply(reply, [])
    assert (wanted.accept, wanted.frames, wanted.close) == (accept, frames, close)


@pytest.mark.parametrize(
    ("reply", "shortcut"),
    [
        ({"text": "hi"}, True),
        ({"bytes": b"\x00\x01"}, True),
        ({"text": ""}, True),
        ({"text": b"not text"}, False),
        ({"bytes": "not bytes"}, False),
        ({"text": "hi", "close": True}, False),
        ({"accept": True, "text": "hi"}, False),
        ({"text": None}, False),
    ],
)
def test_the_content_only_shortcut_gives_what_the_full_reading_gives(
    reply: dict[str, object], shortcut: bool
) -> None:
    """An open socket's content-only reply skips the full reading; it must not change a thing."""
    frame = messages.content_only_frame(reply)
    assert (frame is not None) == shortcut
    if frame is not None:
        wanted = messages.websocket_reply(reply, [])
        assert (wanted.accept, wanted.close, wanted.frames) == (None, None, [frame])


@pytest.mark.parametrize(
    "reply",
    [
        {"text": b"not text"},
        {"bytes": "not bytes"},
        {"close": 1006},
        {"close": "soon"},
        {"accept": True, "subprotocol": "not-offered"},
    ],
)
def test_malformed_websocket_replies_are_refused(reply: dict[str, object]) -> None:
    with pytest.raises(messages.InvalidReply):
        messages.websocket_reply(reply, ["offered"])


def test_http_replies_accept_str_or_bytes_headers_and_reject_a_missing_status() -> None:
    start = messages.http_response_start({"status": 200, "headers": [["X-A", "b"], (b"c", b"d")]})
    assert start["headers"] == [(b"x-a", b"b"), (b"c", b"d")]
    body = messages.http_response_body({"content": b"x", "more_content": True})
    assert body == {"type": "http.response.body", "body": b"x", "more_body": True}
    with pytest.raises(messages.InvalidReply):
        messages.http_response_start({"content": b"x"})
