"""The recovery request a client puts in its URL (``cw``) is read without trusting it: what the
JS client sends comes back as sent, the parameter is taken out of the query string the worker
sees, and a malformed one is served as a fresh start, never an error."""

from __future__ import annotations

import base64
import json

from channelworks_interface import stream_frames


def encoded(body: object) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")


def test_what_the_client_sends_is_read_back_and_taken_out_of_the_query() -> None:
    wanted = stream_frames.Request("abc123", {"liveblog": ("e1-99", 17), "room-2": ("e2", 0)})
    value = stream_frames.encode_request(wanted).encode()
    request, rest = stream_frames.take_request(b"room=a&cw=" + value + b"&x=1")
    assert request == wanted
    assert rest == b"room=a&x=1"


def test_a_client_that_does_not_ask_is_left_alone() -> None:
    assert stream_frames.take_request(b"room=a&cwx=1") == (None, b"room=a&cwx=1")


def test_malformed_requests_are_a_fresh_start() -> None:
    for value in (b"%%%", b"bm90IGpzb24", encoded([1, 2]), b""):
        request, rest = stream_frames.take_request(b"cw=" + value)
        assert request == stream_frames.Request(), value
        assert rest == b""
    # Bad entries are skipped one by one; a token that is not short and alphanumeric is dropped.
    body = {
        "t": "x" * 65,
        "s": {"ok": ["e", 3], "neg": ["e", -1], "bool": ["e", True], "short": ["e"], "n": 5},
    }
    request, _ = stream_frames.take_request(b"cw=" + encoded(body))
    assert request == stream_frames.Request(None, {"ok": ("e", 3)})


def test_stream_frames_carry_the_position() -> None:
    (frame,) = stream_frames.positioned("g", "e", 4, {"text": "hi"})
    assert json.loads(frame["text"]) == {"$cw": "m", "s": "g", "e": "e", "o": 4, "text": "hi"}
    at, data = stream_frames.positioned("g", "e", 5, {"bytes": b"\x00"})
    assert json.loads(at["text"])["$cw"] == "at" and data["bytes"] == b"\x00"
