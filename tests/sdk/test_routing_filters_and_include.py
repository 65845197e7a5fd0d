"""Routing: channel names, regex filters on any field, named groups, include prefixes, defaults."""

from types import SimpleNamespace

import pytest

from channelworks import exceptions, handler, include, route, route_class, routing
from channelworks.generic.websockets import WebsocketConsumer


def first(*args, **kwargs):
    return ("first", kwargs)


def second(*args, **kwargs):
    return ("second", kwargs)


def resolve(routes, channel, **fields):
    found = routing.Router(routes, defaults=False).resolve(channel, fields)
    return None if found is None else (found.consumer, found.kwargs)


def test_route_matches_its_channel_only():
    routes = [route("websocket.connect", first)]
    assert resolve(routes, "websocket.connect", path="/") == (first, {})
    assert resolve(routes, "websocket.receive", path="/") is None


def test_filters_are_regexes_on_any_field_and_named_groups_become_kwargs():
    routes = [
        route("chat.commands", first, command=r"^join$", room=r"^(?P<room>[a-z]+)$"),
        route("chat.commands", second, command=r"^leave$"),
    ]
    assert resolve(routes, "chat.commands", command="join", room="lobby") == (
        first,
        {"room": "lobby"},
    )
    assert resolve(routes, "chat.commands", command="leave") == (second, {})
    assert resolve(routes, "chat.commands", command="join", room="NOPE") is None


def test_message_without_the_filtered_field_does_not_match():
    routes = [route("websocket.receive", first, path=r"^/chat/$")]
    assert resolve(routes, "websocket.receive", text="hi") is None


def test_filters_match_at_the_start_like_re_match():
    routes = [route("websocket.connect", first, path=r"/chat/")]
    assert resolve(routes, "websocket.connect", path="/chat/x") == (first, {})
    assert resolve(routes, "websocket.connect", path="/x/chat/") is None


def test_bytes_fields_and_patterns_are_matched_as_text():
    routes = [route("http.request", first, query_string=rb"^page=(?P<page>\d+)$")]
    assert resolve(routes, "http.request", query_string=b"page=3") == (first, {"page": "3"})


def test_positional_groups_are_refused_with_a_clear_error():
    with pytest.raises(exceptions.InvalidRoute, match="positional groups"):
        route("websocket.connect", first, path=r"^/chat/([a-z]+)/$")


def test_invalid_regex_and_uncallable_consumer_are_refused():
    with pytest.raises(exceptions.InvalidRoute, match="not a regex"):
        route("websocket.connect", first, path="(")
    with pytest.raises(exceptions.InvalidRoute, match="not callable"):
        route("websocket.connect", 42)


def test_first_matching_route_wins():
    routes = [route("websocket.connect", first, path=r"^/a"), route("websocket.connect", second)]
    assert resolve(routes, "websocket.connect", path="/a/") == (first, {})
    assert resolve(routes, "websocket.connect", path="/b/") == (second, {})


def test_include_matches_a_prefix_and_included_routes_see_the_rest():
    inner = [route("websocket.connect", first, path=r"^/(?P<slug>[-\w]+)/stream/$")]
    routes = [include(inner, path=r"^/liveblog")]
    assert resolve(routes, "websocket.connect", path="/liveblog/hello-world/stream/") == (
        first,
        {"slug": "hello-world"},
    )
    assert resolve(routes, "websocket.connect", path="/other/hello/stream/") is None


def test_include_named_groups_are_passed_too_and_nest():
    inner = [route("websocket.receive", first, path=r"^/(?P<item>\d+)/$")]
    middle = [include(inner, path=r"^/items")]
    routes = [include(middle, path=r"^/shop/(?P<shop>\w+)")]
    assert resolve(routes, "websocket.receive", path="/shop/acme/items/7/") == (
        first,
        {"shop": "acme", "item": "7"},
    )


def test_include_takes_a_dotted_path_and_consumers_too():
    routes = [include("tests.sdk.project.routing.liveblog_routing", path=r"^/liveblog")]
    consumer, kwargs = resolve(routes, "websocket.connect", path="/liveblog/news/stream/")
    assert consumer.__name__ == "liveblog_connect"
    assert kwargs == {"slug": "news"}
    dotted = route("websocket.connect", "tests.sdk.project.consumers.whoami_connect")
    assert dotted.consumer.__name__ == "whoami_connect"
    with pytest.raises(exceptions.InvalidRoute, match="cannot import"):
        include("tests.sdk.project.routing.nothing_here")


def test_routing_may_be_a_dict_and_routes_may_list_channels():
    assert resolve({"custom.one": first}, "custom.one") == (first, {})
    routes = [route(["a.one", "a.two"], second)]
    assert resolve(routes, "a.two") == (second, {})
    assert routing.Router(routes, defaults=False).channels == {"a.one", "a.two"}


def test_route_class_routes_on_the_classes_channel_names():
    class Chat(WebsocketConsumer):
        pass

    entry = route_class(Chat, path=r"^/chat/(?P<room>\w+)/$")
    assert set(entry.channels) == {
        "websocket.connect",
        "websocket.receive",
        "websocket.disconnect",
    }
    assert resolve([entry], "websocket.disconnect", path="/chat/x/") == (Chat, {"room": "x"})
    with pytest.raises(exceptions.InvalidRoute, match="channel_names"):
        route_class(first)


def test_router_adds_channels_1_default_routes_at_the_end():
    router = routing.Router([route("websocket.connect", first, path=r"^/chat/$")])
    assert {"http.request", "websocket.connect", "websocket.receive"} <= router.channels
    assert isinstance(router.resolve("http.request", {"path": "/"}).consumer, handler.ViewConsumer)
    assert router.resolve("websocket.connect", {"path": "/chat/"}).consumer is first
    assert router.resolve("websocket.connect", {"path": "/else/"}).consumer is (
        routing.connect_consumer
    )
    assert router.resolve("custom.channel", {}) is None


def test_the_string_django_names_the_view_handler():
    assert isinstance(route("http.request", "django").consumer, handler.ViewConsumer)


def test_routes_describe_themselves_for_logs():
    text = str(route("websocket.connect", first, path=r"^/chat/$"))
    assert text == f"websocket.connect (path=^/chat/$) -> {__name__}.first"


def test_a_router_answers_alike_when_it_remembers_what_it_resolved():
    """The router remembers resolutions per channel and filtered field values: each path keeps
    its own kwargs, fields no filter reads do not matter, and it holds at most
    ROUTE_CACHE_SIZE of them."""
    router = routing.Router(
        [
            include([route("chat.receive", first, path=r"^/(?P<room>\w+)/$")], path=r"^/chat"),
            route("chat.receive", second),
        ],
        defaults=False,
    )
    for _ in range(2):  # the second round is answered from what was remembered
        for room in ("a", "b"):
            found = router.resolve("chat.receive", {"path": f"/chat/{room}/", "text": room})
            assert (found.consumer, found.kwargs) == (first, {"room": room})
        assert router.resolve("chat.receive", {"path": "/other/"}).consumer is second
        assert router.resolve("chat.receive", {"text": "no path"}).consumer is second
        assert router.resolve("chat.receive", {"path": ["not", "hashable"]}).consumer is second
    received = SimpleNamespace(
        channel=SimpleNamespace(name="chat.receive"), content={"path": "/chat/a/"}
    )
    _, kwargs = router.match(received)
    kwargs["room"] = "changed by the caller"
    assert router.resolve("chat.receive", {"path": "/chat/a/"}).kwargs == {"room": "a"}
    for number in range(routing.ROUTE_CACHE_SIZE + 10):
        found = router.resolve("chat.receive", {"path": f"/chat/r{number}/"})
        assert found.kwargs == {"room": f"r{number}"}
    assert len(router._resolved) <= routing.ROUTE_CACHE_SIZE


def test_a_route_added_later_and_a_routable_of_the_users_own_are_always_heard():
    asked = []

    class EveryOther:
        """A routable object of the user's own: its answer may change, so it is asked each time."""

        def resolve(self, channel, fields):
            asked.append(fields["path"])
            if len(asked) % 2:
                return routing.Resolution(first, {}, route(channel, first))
            return None

        def channel_names(self):
            return {"custom.work"}

    router = routing.Router([EveryOther()], defaults=False)
    answers = [router.resolve("custom.work", {"path": "/x/"}) for _ in range(4)]
    assert [found is not None for found in answers] == [True, False, True, False]
    assert len(asked) == 4
    plain = routing.Router([route("a.work", first, path=r"^/a/$")], defaults=False)
    assert plain.resolve("a.work", {"path": "/b/"}) is None
    plain.add_route(route("a.work", second))
    assert plain.resolve("a.work", {"path": "/b/"}).consumer is second
