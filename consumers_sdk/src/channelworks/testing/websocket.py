"""``WSClient``: a WebSocket connection for tests (Channels 1's ``channels.test.WSClient``).

Messages carry the client's ``reply_channel``, ``path``, headers and (on connect) cookies, in the
format interface servers send. ``client.session`` is an HTTP session whose key is sent in the
session cookie, so ``login()``/``force_login()`` make ``message.user`` that user, as a browser
that logged in through a view would.
"""

from __future__ import annotations

import json as json_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.http import SimpleCookie

from channelworks import sessions
from channelworks.testing import base


class WSClient(base.Client):
    """One WebSocket connection: ``send_and_consume("websocket.connect", path="/chat/")``..."""

    def __init__(self, alias: str = "default", ordered: bool = False) -> None:
        super().__init__(alias)
        self._ordered = ordered
        self.order = 0
        self._session: Any = None
        self._headers: dict[str, str] = {}
        self._cookies: dict[str, str] = {}

    def set_cookie(self, key: str, value: str) -> None:
        self._cookies[key] = value

    def set_header(self, key: str, value: str) -> None:
        if key.lower() == "cookie":
            raise ValueError("use set_cookie() for cookies")
        self._headers[key.lower()] = value

    def get_cookies(self) -> dict[str, str]:
        cookies = dict(self._cookies)
        if self._session is not None:
            cookies.setdefault(settings.SESSION_COOKIE_NAME, self._session.session_key)
        return cookies

    @property
    def headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        cookies = self.get_cookies()
        if cookies:
            jar = SimpleCookie()
            for key, value in cookies.items():
                jar[key] = value
            headers["cookie"] = jar.output(header="", sep=";").strip()
        return headers

    @property
    def session(self) -> Any:
        """This client's HTTP session (made on first use), like Django's test ``Client.session``."""
        if not apps.is_installed("django.contrib.sessions"):
            raise RuntimeError("add django.contrib.sessions to INSTALLED_APPS to use sessions")
        if self._session is None:
            session = sessions.session_store(None)
            session.save()
            self._session = session
        return self._session

    def login(self, **credentials: Any) -> bool:
        """Log in as Django's test ``Client.login`` does; False if the credentials are refused."""
        from django.contrib.auth import authenticate

        user = authenticate(**credentials)
        if user is None or not user.is_active:
            return False
        self._login(user)
        return True

    def force_login(self, user: Any, backend: str | None = None) -> None:
        user.backend = backend or settings.AUTHENTICATION_BACKENDS[0]
        self._login(user)

    def _login(self, user: Any) -> None:
        from django.contrib.auth import login
        from django.http import HttpRequest

        request = HttpRequest()
        request.session = self.session
        login(request, user)
        request.session.save()

    def _content(
        self, to: str, content: dict[str, Any] | None, text: Any, path: str
    ) -> dict[str, Any]:
        content = dict(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        path, _, query = path.partition("?")
        content.setdefault("path", path)
        if to == "websocket.connect":
            content.setdefault("query_string", query.encode("latin-1"))
            content.setdefault(
                "headers",
                [[k.encode("latin-1"), v.encode("latin-1")] for k, v in self.headers.items()],
            )
            content.setdefault("client", ["127.0.0.1", 50000])
            content.setdefault("server", ["testserver", 80])
        if self._ordered:
            if "order" in content:
                raise ValueError('do not set "order" yourself with ordered=True')
            content["order"] = self.order
            self.order += 1
        if text is not None:
            content["text"] = text if isinstance(text, str) else json_module.dumps(text)
        return content

    def send(
        self, to: str, content: dict[str, Any] | None = None, text: Any = None, path: str = "/"
    ) -> None:
        """Send to ``to``; ``text`` that is not a string is sent as JSON."""
        self.channel_layer.send(to, self._content(to, content, text, path))

    def send_and_consume(  # type: ignore[override]
        self,
        channel: str,
        content: dict[str, Any] | None = None,
        text: Any = None,
        path: str = "/",
        fail_on_none: bool = True,
        check_accept: bool = True,
    ) -> Any:
        self.send(channel, content, text, path)
        return self.consume(channel, fail_on_none=fail_on_none, check_accept=check_accept)

    def consume(self, channel: str, fail_on_none: bool = True, check_accept: bool = True) -> Any:
        """Run the consumer; on connect with ``check_accept``, require ``{"accept": True}``."""
        outcome = super().consume(channel, fail_on_none=fail_on_none)
        if channel == "websocket.connect" and check_accept:
            received = self.receive(json=False)
            if received != {"accept": True}:
                raise AssertionError(f"connection not accepted: got {received!r}")
        return outcome

    def receive(self, json: bool = True) -> Any:
        """The next message to this connection; its ``text`` decoded as JSON when ``json``."""
        content = super().receive()
        if content is None:
            return None
        text = content.get("text")
        if json and isinstance(text, str):
            return json_module.loads(text)
        return text if text is not None else content
