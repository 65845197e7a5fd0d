"""Sessions on messages (Channels 1's ``channels.sessions``).

- ``@channel_session``: ``message.channel_session``, a Django session per connection that lives as
  long as the connection: state kept from connect to disconnect, deleted when the socket closes.
  Stored with ``settings.CHANNEL_SESSION_ENGINE`` (default: ``SESSION_ENGINE``); any backend but
  signed cookies works, and every worker sees it when the backend is shared (database, cache).
  Its key is an HMAC of the reply channel under ``SECRET_KEY`` (knowing the channel's name, which
  may appear in logs, does not give the key), and it is stored by a store class of its own: an
  HTTP request presenting a channel session's key as its session cookie finds no session (the
  data is signed with another salt, cached under another prefix), so a channel session never logs
  anyone in over HTTP.
- ``@http_session``: ``message.http_session``, the user's Django session from the cookie of the
  WebSocket handshake (or a ``session_key`` query parameter, when the project sets
  ``CHANNELWORKS["SESSION_KEY_IN_QUERY"] = True``); None when there is none.
- ``@channel_and_http_session``: both; the HTTP session key is kept in the channel session on
  connect so later messages (which carry no cookies) get the same ``http_session``.
- ``@enforce_ordering``: kept for imports; the events of one connection are always handled one at
  a time and in order (the worker runtime does it), so it changes nothing.

All decorators work on plain and ``async def`` consumers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any, TypeVar, overload

from django.apps import apps
from django.conf import settings
from django.contrib.sessions.backends import signed_cookies
from django.contrib.sessions.backends.base import CreateError
from django.http import QueryDict, parse_cookie
from django.utils.crypto import salted_hmac

from channelworks import decorating, exceptions, signals, wire

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)
_CHANNEL_SESSION_PREFIX = "chn"
_KEY_SALT = "channelworks.sessions.channel_session_key"
_CACHE_KEY_PREFIX = "channelworks.channel_session"
_CLOSING_CHANNEL = "websocket.disconnect"


def channel_session_engine() -> ModuleType:
    engine = import_module(getattr(settings, "CHANNEL_SESSION_ENGINE", settings.SESSION_ENGINE))
    if engine is signed_cookies:
        raise exceptions.ConfigurationError(
            "channel sessions cannot use signed-cookie sessions (there is no cookie to keep them "
            "in); set CHANNEL_SESSION_ENGINE to a database or cache session engine"
        )
    return engine


@functools.cache
def channel_session_store(engine: ModuleType) -> type:
    """The engine's ``SessionStore`` for channel sessions: another class name, so its data is
    signed with another salt (Django salts with the class's name), and another cache prefix, so
    the engine's own store (the one HTTP requests use) cannot read a channel session."""
    base: type = engine.SessionStore
    attributes: dict[str, Any] = {"__module__": __name__, "__qualname__": "ChannelSessionStore"}
    if hasattr(base, "cache_key_prefix"):
        attributes["cache_key_prefix"] = _CACHE_KEY_PREFIX
    return type("ChannelSessionStore", (base,), attributes)


def channel_session_key(reply_channel: str) -> str:
    """The session key of a connection: an HMAC of its reply channel under ``SECRET_KEY``."""
    digest = salted_hmac(_KEY_SALT, reply_channel, algorithm="sha256").hexdigest()
    return _CHANNEL_SESSION_PREFIX + str(digest)[:37]


def session_for_reply_channel(reply_channel: str) -> Any:
    """The session tied to a connection's reply channel (created empty if it does not exist)."""
    session_key = channel_session_key(reply_channel)
    session = channel_session_store(channel_session_engine())(session_key=session_key)
    session.keys()  # load now: a backend forgets the key of a session it cannot find
    session._session_key = session_key
    return session


def delete_channel_session(reply_channel: str) -> None:
    """Forget the session of a connection that has closed."""
    session_key = channel_session_key(reply_channel)
    channel_session_store(channel_session_engine())(session_key=session_key).delete(session_key)


def session_channel(message: Any) -> str:
    """The channel a connection's channel session is keyed by: its reply channel, or, for a
    socket that resumed an earlier one (docs/delivery.md), the reply channel it began with
    (the interface puts it in the message as ``session_channel``)."""
    resumed = message.content.get("session_channel")
    return resumed if isinstance(resumed, str) and resumed else str(message.reply_channel.name)


def open_channel_session(message: Any) -> None:
    if hasattr(message, "channel_session"):
        return
    if message.reply_channel is None:
        raise ValueError(
            "no reply_channel in the message; @channel_session only works on messages from a "
            "connection (websocket.*, http.request)"
        )
    session = session_for_reply_channel(session_channel(message))
    if not session.exists(session.session_key):
        try:
            session.save(must_create=True)
        except CreateError:
            session = session_for_reply_channel(session_channel(message))
    message.channel_session = session


def _closing(message: Any) -> bool:
    channel = getattr(message, "channel", None)
    return getattr(channel, "name", None) == _CLOSING_CHANNEL


def save_channel_session(message: Any, error: BaseException | None) -> None:
    session = getattr(message, "channel_session", None)
    if session is None:
        return
    if _closing(message):
        session.delete()  # the socket is gone: nothing may use its session again
        message.channel_session_deleted = True
    elif session.modified:
        session.save()


def _forget_closed_connection(sender: Any, message: Any = None, **kwargs: Any) -> None:
    """After any consumer of ``websocket.disconnect`` — also one without ``@channel_session`` —
    delete the connection's channel session (receiver of ``consumer_finished``)."""
    if message is None or not _closing(message) or message.reply_channel is None:
        return
    if getattr(message, "channel_session_deleted", False) or not _channel_sessions_possible():
        return
    name = session_channel(message)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _delete_quietly(name)
    else:  # an async consumer's loop: the session store may do blocking database I/O
        asyncio.get_running_loop().run_in_executor(None, _delete_quietly, name)


def _channel_sessions_possible() -> bool:
    """False where no channel session can exist: signed-cookie sessions, or database sessions
    without their app (and table)."""
    path = getattr(settings, "CHANNEL_SESSION_ENGINE", settings.SESSION_ENGINE)
    if import_module(path) is signed_cookies:
        return False
    return "db" not in path.rsplit(".", 1)[-1] or apps.is_installed("django.contrib.sessions")


def _delete_quietly(reply_channel: str) -> None:
    try:
        delete_channel_session(reply_channel)
    except Exception:
        logger.warning("could not delete the channel session of a closed socket", exc_info=True)


signals.consumer_finished.connect(_forget_closed_connection, dispatch_uid=__name__)


def channel_session(func: F) -> F:
    """Provide ``message.channel_session``, saved after the consumer if it was modified."""
    return decorating.around(func, open_channel_session, save_channel_session)  # type: ignore[return-value]


def http_session_key(content: Any) -> str | None:
    """The Django session key a connection presented: its session cookie, or ``?session_key=``
    where the project opted in (``CHANNELWORKS["SESSION_KEY_IN_QUERY"] = True``). Off by
    default: a key in a URL ends up in proxy and access logs and browser history, where anyone
    reading them could log in as the user."""
    ours = getattr(settings, "CHANNELWORKS", None) or {}
    query = wire.text(content.get("query_string"))
    if query and ours.get("SESSION_KEY_IN_QUERY", False):
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
