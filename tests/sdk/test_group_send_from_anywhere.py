"""``Channel``/``Group`` from consumers, views, models, commands, threads and async code."""

import asyncio
import json
import threading

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client as DjangoClient

from channelworks import Channel, Group, exceptions, route, testing
from tests.sdk.project.liveblog.models import Note, Post


def test_sync_send_outside_a_consumer_goes_out_at_once(layer):
    Channel("custom.inbox").send({"n": 1})
    assert testing.next_message("custom.inbox").content == {"n": 1}


def test_group_add_send_discard(layer):
    group = Group("room")
    group.add("test.a!1")
    group.add(Channel("test.b!2"))
    group.send({"text": "hello"})
    assert testing.next_message("test.a!1").content == {"text": "hello"}
    assert testing.next_message("test.b!2").content == {"text": "hello"}
    group.discard("test.a!1")
    group.send({"text": "again"})
    assert testing.next_message("test.a!1") is None
    assert testing.next_message("test.b!2").content == {"text": "again"}


def test_only_dicts_can_be_sent(layer):
    with pytest.raises(TypeError, match="only send dicts"):
        Channel("custom.inbox").send("text")  # type: ignore[arg-type]


async def test_async_variants_work_from_async_code(layer):
    group = Group("async-room")
    await group.aadd("test.a!1")
    await group.asend({"text": "hi"})
    await Channel("custom.inbox").asend({"n": 2})
    backend = layer.channel_layer
    assert await backend.receive_many(["test.a!1"], timeout=1) == ("test.a!1", {"text": "hi"})
    assert await backend.receive_many(["custom.inbox"], timeout=1) == ("custom.inbox", {"n": 2})
    await group.adiscard("test.a!1")


async def test_sync_calls_from_a_running_event_loop_are_refused_clearly(layer):
    with pytest.raises(exceptions.SyncCallInEventLoop, match="await"):
        Group("room").add("test.a!1")


def test_send_from_a_plain_thread(layer):
    errors = []

    def push():
        try:
            Group("threads").send({"text": "from a thread"})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    Group("threads").add("test.t!1")
    thread = threading.Thread(target=push)
    thread.start()
    thread.join(10)
    assert errors == []
    assert testing.next_message("test.t!1").content == {"text": "from a thread"}


def test_model_save_sends_to_the_group(layer):
    Group("notes").add("test.watcher!1")
    Note.objects.create(text="saved")
    assert testing.next_message("test.watcher!1").content == {"text": "saved"}


def test_on_commit_sends_only_after_the_transaction_commits(layer):
    Group("liveblog").add("test.reader!1")
    with transaction.atomic():
        post = Post.objects.create(title="Breaking")
        assert testing.next_message("test.reader!1") is None
    received = testing.next_message("test.reader!1")
    assert json.loads(received["text"]) == {"id": post.pk, "title": "Breaking"}


def test_on_commit_sends_nothing_when_the_transaction_rolls_back(layer):
    Group("liveblog").add("test.reader!2")
    with pytest.raises(RuntimeError), transaction.atomic():
        Post.objects.create(title="Never published")
        raise RuntimeError("roll back")
    assert testing.next_message("test.reader!2") is None


def test_on_commit_in_autocommit_mode_sends_at_once(layer):
    Group("liveblog").add("test.reader!3")
    Post.objects.create(title="Autocommit")
    assert json.loads(testing.next_message("test.reader!3")["text"])["title"] == "Autocommit"


def test_a_view_served_by_a_wsgi_handler_can_send(layer):
    Group("notes").add("test.watcher!2")
    response = DjangoClient().get("/notify/", {"text": "from a view"})
    assert response.status_code == 200
    assert testing.next_message("test.watcher!2").content == {"text": "from a view"}


def test_a_management_command_can_send(layer):
    Group("notes").add("test.watcher!3")
    call_command("notify", "from a command")
    assert testing.next_message("test.watcher!3").content == {"text": "from a command"}


def test_sends_in_a_consumer_are_held_until_it_returns(layer):
    seen = {}

    def consumer(message):
        message.reply_channel.send({"text": "held"})
        seen["during"] = testing.next_message(message.reply_channel.name)
        message.reply_channel.send({"text": "now"}, immediately=True)
        seen["immediate"] = testing.next_message(message.reply_channel.name)

    client = testing.Client()
    with testing.apply_routes([route("custom.work", consumer)]):
        client.send_and_consume("custom.work", {})
    assert seen["during"] is None
    assert seen["immediate"].content == {"text": "now"}
    assert client.receive() == {"text": "held"}


def test_held_sends_go_out_even_when_the_consumer_raises(layer):
    def consumer(message):
        message.reply_channel.send({"accept": True})
        raise ValueError("boom")

    client = testing.Client()
    with testing.apply_routes([route("custom.work", consumer)]), pytest.raises(ValueError):
        client.send_and_consume("custom.work", {})
    assert client.receive() == {"accept": True}


def test_async_consumer_sends_are_held_too(layer):
    async def consumer(message):
        await message.reply_channel.asend({"text": "a"})
        message.reply_channel.send({"text": "b"})  # sync send is fine: it is only held
        await asyncio.sleep(0)

    client = testing.Client()
    with testing.apply_routes([route("custom.work", consumer)]):
        client.send_and_consume("custom.work", {})
    assert client.receive() == {"text": "a"}
    assert client.receive() == {"text": "b"}
