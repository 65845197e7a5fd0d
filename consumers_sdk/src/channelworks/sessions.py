"""Sessions on messages (Channels 1's ``channels.sessions``).

- ``@channel_session``: ``message.channel_session``, a Django session per connection (keyed by its
  reply channel) that lives as long as the connection: state kept from connect to disconnect.
  Stored with ``settings.CHANNEL_SESSION_ENGINE`` (default: ``SESSION_ENGINE``); any backend but
  signed cookies works, and every worker sees it when the backend is shared (database, cache).
- ``@http_session``: ``message.http_session``, the user's Django session from the cookie of the
  WebSocket handshake (or a ``session_key`` query parameter); None when there is none.
- ``@channel_and_http_session``: both; the HTTP session key is kept in the channel session on
  connect so later messages (which carry no cookies) get the same ``http_session``.
- ``@enforce_ordering``: kept for imports; the events of one connection are always handled one at
  a time and in order (the worker runtime does it), so it changes nothing.

All decorators work on plain and ``async def`` consumers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any, TypeVar, overload

from django.conf import settings
from django.contrib.sessions.backends import signed_cookies
from django.contrib.sessions.backends.base import CreateError
from django.http import QueryDict, parse_cookie

from channelworks import decorating, exceptions, wire

F = TypeVar("F", bound=Callable[..., Any])
_CHANNEL_SESSION_PREFIX = "chn"


def channel_session_engine() -> ModuleType:
    engine = import_module(getattr(settings, "CHANNEL_SESSION_ENGINE", settings.SESSION_ENGINE))
    if engine is signed_cookies:
        raise exceptions.ConfigurationError(
            "channel sessions cannot use signed-cookie sessions (there is no cookie to keep them "
            "in); set CHANNEL_SESSION_ENGINE to a database or cache session engine"
        )
    return engine


def session_for_reply_channel(reply_channel: str) -> Any:
    """The session tied to a connection's reply channel (created empty if it does not exist)."""
    digest = hashlib.sha256(reply_channel.encode("utf-8")).hexdigest()
    session_key = _CHANNEL_SESSION_PREFIX + digest[:37]
    session = channel_session_engine().SessionStore(session_key=session_key)
    session.keys()  # load now: a backend forgets the key of a session it cannot find
    session._session_key = session_key
    return session


def open_channel_session(message: Any) -> None:
    if hasattr(message, "channel_session"):
        return
    if message.reply_channel is None:
        raise ValueError(
            "no reply_channel in the message; @channel_session only works on messages from a "
            "connection (websocket.*, http.request)"
        )
    session = session_for_reply_channel(message.reply_channel.name)
    if not session.exists(session.session_key):
        try:
            session.save(must_create=True)
        except CreateError:
            session = session_for_reply_channel(message.reply_channel.name)
    message.channel_session = session


def save_channel_session(message: Any, error: BaseException | None) -> None:
    session = getattr(message, "channel_session", None)
    if session is not None and session.modified:
        session.save()


def channel_session(func: F) -> F:
    """Provide ``message.channel_session``, saved after the consumer if it was modified."""
    return decorating.around(func, open_channel_session, save_channel_session)  # type: ignore[return-value]


def http_session_key(content: Any) -> str | None:
    """The Django session key a connection presented: ``?session_key=`` or the session cookie."""
    query = wire.text(content.get("query_string"))
    if query:
        key = QueryDict(query).get("session_key")
        if key:
            return str(key)
    cookies = wire.header(content, "cookie")
    if cookies:
        key = parse_cookie(cookies).get(settings.SESSION_COOKIE_NAME)
        if key:
            return str(key)
    return None


def session_store(session_key: str | None) -> Any:
    """An instance of the project's ``SESSION_ENGINE`` store for ``session_key``."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def open_http_session(message: Any) -> None:
    if hasattr(message, "http_session"):
        return
    key = http_session_key(message.content)
    message.http_session = session_store(key) if key else None


def save_http_session(message: Any, error: BaseException | None) -> None:
    session = getattr(message, "http_session", None)
    if error is None and session is not None and session.modified:
        session.save()


def http_session(func: F) -> F:
    """Provide ``message.http_session`` (like ``request.session``; None without a session)."""
    return decorating.around(func, open_http_session, save_http_session)  # type: ignore[return-value]


def _link_http_session(message: Any) -> None:
    name = settings.SESSION_COOKIE_NAME
    if message.http_session is not None:
        if message.channel_session.get(name) != message.http_session.session_key:
            message.channel_session[name] = message.http_session.session_key
    elif name in message.channel_session:
        message.http_session = session_store(message.channel_session[name])


def open_channel_and_http_session(message: Any) -> None:
    open_http_session(message)
    open_channel_session(message)
    _link_http_session(message)


def save_channel_and_http_session(message: Any, error: BaseException | None) -> None:
    save_channel_session(message, error)
    save_http_session(message, error)


def channel_and_http_session(func: F) -> F:
    """Both sessions; the HTTP session follows the connection after its connect message."""
    return decorating.around(  # type: ignore[return-value]
        func, open_channel_and_http_session, save_channel_and_http_session
    )


@overload
def enforce_ordering(func: F, slight: bool = False) -> F: ...


@overload
def enforce_ordering(func: None = None, slight: bool = False) -> Callable[[F], F]: ...


def enforce_ordering(func: F | None = None, slight: bool = False) -> F | Callable[[F], F]:
    """Per-connection ordering is always on in Channelworks; this returns the consumer as is."""
    if func is not None:
        return func

    def unchanged(consumer: F) -> F:
        return consumer

    return unchanged
