"""HTTP through Django: the default ``http.request`` consumer (Channels 1's ``channels.handler``).

``ViewConsumer`` turns an ``http.request`` message into an
:class:`~channelworks.request.AsgiRequest`,
runs Django's normal request handling on it (``BaseHandler.get_response``: middleware, URL
resolution, views, exception handling, ``request_started``/``request_finished`` signals, so database
connections are handled as per request), and sends the response to the reply channel as Channels-1
``http.response`` messages:

- first ``{"status": int, "headers": [[name, value], ...], "content": bytes,
  "more_content": bool}``,
- then ``{"content": bytes, "more_content": bool}`` until ``more_content`` is False.

Content goes in chunks of at most ``chunk_size`` bytes; a streaming response is sent as it is
produced (the headers first, each part as it comes). With ``django.contrib.staticfiles``
installed, static files are served: with ``DEBUG`` as runserver serves them, without it from
``STATIC_ROOT`` (collected) with caching headers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django import http
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestDataTooBig
from django.core.handlers import base
from django.urls import set_script_prefix

from channelworks import exceptions, request, wire

logger = logging.getLogger(__name__)
REPLY_RETRY_SECONDS = 10.0


class AsgiHandler(base.BaseHandler):  # type: ignore[misc]
    """Django's request handling for Channels-1 HTTP messages; yields the reply messages."""

    request_class = request.AsgiRequest
    chunk_size = 512 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()
        self._static = _static_serving()

    def __call__(self, message: Mapping[str, Any], body: bytes = b"") -> Iterator[dict[str, Any]]:
        script_name = wire.text(message.get("root_path", ""))
        set_script_prefix(settings.FORCE_SCRIPT_NAME or script_name or "/")
        signals.request_started.send(sender=type(self), message=message)
        try:
            req = self.request_class(message, body)
        except UnicodeDecodeError:
            logger.warning("Bad Request (UnicodeDecodeError) for %s", message.get("path"))
            response = http.HttpResponseBadRequest()
        except RequestDataTooBig:
            response = http.HttpResponse("413 Payload too large", status=413)
        else:
            response = self.get_response(req)
        response._handler_class = type(self)
        try:
            yield from self.encode_response(response)
        finally:
            response.close()

    def get_response(self, req: Any) -> Any:
        if self._static is not None and req.path.startswith(self._static.prefix):
            return _serve_static(req, self._static, req.path[len(self._static.prefix) :])
        return super().get_response(req)

    @classmethod
    def encode_response(cls, response: Any) -> Iterator[dict[str, Any]]:
        """The reply messages for a Django response."""
        headers = [
            [str(name).encode("latin-1"), str(value).encode("latin-1")]
            for name, value in response.items()
        ]
        for cookie in response.cookies.values():
            headers.append([b"Set-Cookie", cookie.output(header="").strip().encode("latin-1")])
        start: dict[str, Any] = {"status": response.status_code, "headers": headers}
        if response.streaming:
            yield {**start, "content": b"", "more_content": True}
            for part in response:
                for chunk in cls.chunk_bytes(bytes(part)):
                    yield {"content": chunk, "more_content": True}
            yield {"content": b"", "more_content": False}
            return
        content = response.content
        chunks = list(cls.chunk_bytes(content)) or [b""]
        for index, chunk in enumerate(chunks):
            part = {"content": chunk, "more_content": index < len(chunks) - 1}
            yield {**start, **part} if index == 0 else part

    @classmethod
    def chunk_bytes(cls, data: bytes) -> Iterator[bytes]:
        for position in range(0, len(data), cls.chunk_size):
            yield data[position : position + cls.chunk_size]


STATIC_MAX_AGE = 3600  # seconds a browser or proxy may keep a collected static file


@dataclass(frozen=True)
class StaticServing:
    """Where static files are served from: ``prefix`` is ``STATIC_URL``'s path; ``root`` is
    ``STATIC_ROOT`` (collected files, with caching headers), or None for the finders (as
    ``runserver`` serves them, never cached)."""

    prefix: str
    root: str | None


def _static_serving() -> StaticServing | None:
    """How this process serves ``STATIC_URL``, or None when it does not.

    With ``DEBUG`` (or ``CHANNELWORKS["SERVE_STATIC"] = True``): from the staticfiles finders, as
    runserver does. Without ``DEBUG``: from ``STATIC_ROOT`` when it is a folder (what
    ``collectstatic``, run by ``channelworks build``, filled), unless ``SERVE_STATIC`` is False.
    """
    from django.apps import apps

    ours = getattr(settings, "CHANNELWORKS", None) or {}
    wanted = ours.get("SERVE_STATIC")
    static_url = getattr(settings, "STATIC_URL", None)
    if wanted is False or not static_url or not apps.is_installed("django.contrib.staticfiles"):
        return None
    prefix = str(static_url)
    if "://" in prefix:
        return None
    prefix = prefix if prefix.startswith("/") else "/" + prefix
    if wanted or settings.DEBUG:
        return StaticServing(prefix, None)
    root = getattr(settings, "STATIC_ROOT", None)
    if root and os.path.isdir(root):
        return StaticServing(prefix, str(root))
    return None


def _serve_static(req: Any, serving: StaticServing, relative: str) -> Any:
    from django.contrib.staticfiles import views
    from django.views import static

    try:
        if serving.root is None:
            return views.serve(req, relative, insecure=True)
        response = static.serve(req, relative, document_root=serving.root)
    except http.Http404 as error:
        return http.HttpResponseNotFound(str(error))
    response["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
    return response


class ViewConsumer:
    """The consumer behind ``route("http.request", "django")`` and the default HTTP route."""

    handler_class: type[AsgiHandler] = AsgiHandler

    def __init__(self) -> None:
        self._handler: AsgiHandler | None = None
        self._lock = threading.Lock()

    @property
    def handler(self) -> AsgiHandler:
        with self._lock:
            if self._handler is None:
                self._handler = self.handler_class()
            return self._handler

    def __call__(self, message: Any, **kwargs: Any) -> None:
        reply = message.reply_channel
        if reply is None:
            raise ValueError("http.request message without a reply_channel")
        try:
            body = request.read_body(message)
        except exceptions.RequestAborted:
            return
        except exceptions.RequestTimeout:
            _send(reply, {"status": 408, "headers": [], "content": b"", "more_content": False})
            return
        for reply_message in self.handler(message.content, body):
            _send(reply, reply_message)

    def __repr__(self) -> str:
        return "ViewConsumer()"


def _send(reply: Any, content: dict[str, Any]) -> None:
    deadline = time.monotonic() + REPLY_RETRY_SECONDS
    while True:
        try:
            reply.send(content, immediately=True)
            return
        except exceptions.ChannelFull:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
