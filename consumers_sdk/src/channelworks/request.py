"""``AsgiRequest``: a Django ``HttpRequest`` built from a Channels-1 ``http.request`` message.

It carries what ``WSGIRequest`` carries (``META`` with ``REQUEST_METHOD``, ``PATH_INFO``,
``QUERY_STRING``, ``REMOTE_ADDR``, ``SERVER_NAME``/``PORT``, ``HTTP_*`` headers, ``CONTENT_TYPE``,
``CONTENT_LENGTH``), so views, middleware, sessions, auth and CSRF see the request they would see
under runserver. ``request.message`` is the message and ``request.reply_channel`` its reply channel.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Mapping
from typing import Any

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, QueryDict, parse_cookie

from channelworks import exceptions, wire

BODY_TIMEOUT_SECONDS = 60.0


def _path(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value if isinstance(value, str) else "/"


class AsgiRequest(HttpRequest):  # type: ignore[misc]
    """A Django request for one ``http.request`` message and its (already read) body."""

    def __init__(self, message: Mapping[str, Any], body: bytes = b"") -> None:
        self.message = message
        self.reply_channel = message.get("reply_channel")
        script_name = wire.text(message.get("root_path", "")).rstrip("/")
        path = _path(message.get("path"))
        if script_name and path.startswith(script_name + "/"):
            path_info = path[len(script_name) :]
        else:
            path_info = path
        self.path_info = path_info or "/"
        self.path = f"{script_name}/{self.path_info.replace('/', '', 1)}"
        self.method = wire.text(message.get("method", "GET")).upper()
        scheme = wire.text(message.get("scheme")) or "http"
        self.META = {
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": wire.text(message.get("query_string", "")),
            "SCRIPT_NAME": script_name,
            "PATH_INFO": self.path_info,
            "SERVER_PROTOCOL": f"HTTP/{wire.text(message.get('http_version')) or '1.1'}",
            "wsgi.url_scheme": scheme,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
        }
        client = wire.address(message.get("client"))
        if client is not None:
            self.META["REMOTE_ADDR"], self.META["REMOTE_PORT"] = client[0], str(client[1])
            self.META["REMOTE_HOST"] = client[0]
        server = wire.address(message.get("server"))
        self.META["SERVER_NAME"], self.META["SERVER_PORT"] = (
            (server[0], str(server[1])) if server else ("unknown", "0")
        )
        for name, value in wire.header_pairs(message.get("headers")):
            if name == "content-length":
                key = "CONTENT_LENGTH"
            elif name == "content-type":
                key = "CONTENT_TYPE"
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            self.META[key] = f"{self.META[key]},{value}" if key in self.META else value
        self.META["CONTENT_LENGTH"] = str(len(body))
        self._set_content_type_params(self.META)
        self._stream = LimitedStream(io.BytesIO(body), len(body))
        self._read_started = False
        self.resolver_match = None
        self._scheme = scheme

    def _get_scheme(self) -> str:
        return self._scheme

    @functools.cached_property
    def GET(self) -> QueryDict:
        return QueryDict(self.META["QUERY_STRING"], encoding=self._encoding)

    @functools.cached_property
    def COOKIES(self) -> dict[str, str]:
        cookies: dict[str, str] = parse_cookie(self.META.get("HTTP_COOKIE", ""))
        return cookies

    def _get_post(self) -> Any:
        if not hasattr(self, "_post"):
            self._load_post_and_files()
        return self._post

    def _set_post(self, post: Any) -> None:
        self._post = post

    @property
    def FILES(self) -> Any:
        if not hasattr(self, "_files"):
            self._load_post_and_files()
        return self._files

    POST = property(_get_post, _set_post)


def read_body(message: Any, timeout: float = BODY_TIMEOUT_SECONDS) -> bytes:
    """The whole request body: ``body``, then chunks from ``body_channel`` if the message has one.

    Chunks are ``{"content": bytes, "more_content": bool}``; ``{"closed": True}`` means the client
    went away (:class:`RequestAborted`); no chunk for ``timeout`` seconds is
    :class:`RequestTimeout`.
    """
    parts = [bytes(message.get("body") or b"")]
    body_channel = message.get("body_channel")
    if not body_channel:
        return parts[0]
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise exceptions.RequestTimeout(f"no request body chunk on {body_channel} in time")
        _, chunk = message.channel_layer.receive_many([body_channel], block=True)
        if chunk is None:
            continue
        if chunk.get("closed"):
            raise exceptions.RequestAborted("the client closed the connection mid-request")
        parts.append(bytes(chunk.get("content") or b""))
        if not chunk.get("more_content"):
            return b"".join(parts)
