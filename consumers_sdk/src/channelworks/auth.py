"""``message.user`` from Django's auth (Channels 1's ``channels.auth``).

The user is found exactly as ``AuthenticationMiddleware`` finds ``request.user``
(``django.contrib.auth.get_user`` on a session): the session's backend is asked for the user, the
session hash is checked against the password, and ``AnonymousUser`` is the answer otherwise.

- ``@http_session_user``: from the HTTP session cookie of the message (``websocket.connect`` and
  ``http.request`` carry cookies; later WebSocket messages do not).
- ``@channel_session_user``: from the channel session, where ``@channel_session_user_from_http``
  put it on connect. Use the pair: ``_from_http`` on ``websocket.connect``, the plain one on
  ``websocket.receive``/``disconnect``.
- ``@channel_and_http_session_user_from_http``: as ``_from_http`` and also keeps the HTTP session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import auth

from channelworks import decorating, sessions

F = TypeVar("F", bound=Callable[..., Any])
_USER_KEYS = (auth.SESSION_KEY, auth.BACKEND_SESSION_KEY, auth.HASH_SESSION_KEY)


class _SessionOnly:
    """What ``auth.get_user`` needs of a request: its session."""

    def __init__(self, session: Any) -> None:
        self.session = session


def user_from_session(session: Any) -> Any:
    """The user a Django session is logged in as, or ``AnonymousUser``."""
    if session is None:
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return auth.get_user(_SessionOnly(session))


def transfer_user(from_session: Any, to_session: Any) -> None:
    """Copy the logged-in user from one session (HTTP) to another (the channel session)."""
    if all(key in from_session for key in _USER_KEYS):
        for key in _USER_KEYS:
            if to_session.get(key) != from_session[key]:
                to_session[key] = from_session[key]


def _user_from_http(message: Any) -> None:
    sessions.open_http_session(message)
    message.user = user_from_session(message.http_session)


def http_session_user(func: F) -> F:
    """Provide ``message.http_session`` and ``message.user`` from the session cookie."""
    return decorating.around(  # type: ignore[return-value]
        func, _user_from_http, sessions.save_http_session
    )


def _user_from_channel_session(message: Any) -> None:
    sessions.open_channel_session(message)
    message.user = user_from_session(message.channel_session)


def channel_session_user(func: F) -> F:
    """Provide ``message.channel_session`` and ``message.user`` kept in it."""
    return decorating.around(  # type: ignore[return-value]
        func, _user_from_channel_session, sessions.save_channel_session
    )


def _transfer_from_http(message: Any) -> None:
    _user_from_http(message)
    sessions.open_channel_session(message)
    if message.http_session is not None:
        transfer_user(message.http_session, message.channel_session)


def _save_both(message: Any, error: BaseException | None) -> None:
    sessions.save_channel_session(message, error)
    sessions.save_http_session(message, error)


def channel_session_user_from_http(func: F) -> F:
    """On connect: ``message.user`` from the cookie, remembered in the channel session."""
    return decorating.around(func, _transfer_from_http, _save_both)  # type: ignore[return-value]


def _transfer_and_link(message: Any) -> None:
    sessions.open_channel_and_http_session(message)
    if message.http_session is not None:
        transfer_user(message.http_session, message.channel_session)
    message.user = user_from_session(message.channel_session)


def channel_and_http_session_user_from_http(func: F) -> F:
    """``channel_session_user_from_http`` plus ``message.http_session`` on every message."""
    return decorating.around(  # type: ignore[return-value]
        func, _transfer_and_link, sessions.save_channel_and_http_session
    )
