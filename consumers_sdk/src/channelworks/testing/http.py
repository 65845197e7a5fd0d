"""``http_request()``: an HTTP request through the routing, as a worker handles it."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import cookies as http_cookies
from typing import Any

from channelworks import wire
from channelworks.testing import base


@dataclass
class HttpReply:
    """The reply messages of one ``http.request``, put together."""

    status: int
    headers: list[tuple[str, str]]
    content: bytes
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def cookies(self) -> http_cookies.SimpleCookie:
        jar: http_cookies.SimpleCookie = http_cookies.SimpleCookie()
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                jar.load(value)
        return jar


def http_request(
    client: base.Client,
    path: str = "/",
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
) -> HttpReply:
    """Send an ``http.request`` for ``path`` (may hold ``?query``) and collect the reply."""
    path, _, query = path.partition("?")
    content = {
        "reply_channel": client.reply_channel,
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": [
            [k.lower().encode("latin-1"), v.encode("latin-1")]
            for k, v in {"host": "testserver", **(headers or {})}.items()
        ],
        "body": body,
        "client": ["127.0.0.1", 50000],
        "server": ["testserver", 80],
    }
    client.channel_layer.send("http.request", content)
    base.Client.consume(client, "http.request")
    messages: list[dict[str, Any]] = []
    while True:
        reply = base.Client.receive(client)
        if reply is None:
            raise AssertionError(
                f"the response to {method} {path} ended without more_content=False"
            )
        messages.append(reply)
        if not reply.get("more_content"):
            break
    first = messages[0]
    return HttpReply(
        status=int(first["status"]),
        headers=[(wire.text(k), wire.text(v)) for k, v in first.get("headers", [])],
        content=b"".join(bytes(m.get("content") or b"") for m in messages),
        messages=messages,
    )
