"""The chat over one WebSocket: a JSON consumer with three commands.

Client → server frames::

    {"command": "join", "room": "lobby"}
    {"command": "leave", "room": "lobby"}
    {"command": "send", "room": "lobby", "message": "hello"}

Server → client frames::

    {"hello": "alice", "staff": true, "rooms": [{"slug", "title", "staff_only"}, ...]}  on connect
    {"joined": "lobby", "title": "Lobby", "history": [message, ...]}                   to you
    {"left": "lobby"}                                                                   to you
    {"room": "lobby", "id": 7, "user": "bob", "message": "hi", "created": "..."}        to the room
    {"room": "lobby", "event": "joined" | "left", "user": "bob"}                       to the room
    {"error": "...", "room": "staff"}                                                   to you

Only logged-in users may connect (the Django session cookie of the page is read on connect, as
``request.user`` would be); staff-only rooms refuse other users. The rooms a socket joined are
kept in its channel session, so any worker handling its next message knows them.
"""

import logging
from typing import Any

from channelworks import Group
from channelworks.generic.websockets import JsonWebsocketConsumer
from rooms.models import MAX_MESSAGE_LENGTH, Message, Room

logger = logging.getLogger(__name__)


def refuse(message: Any, **kwargs: Any) -> None:
    """WebSocket paths the chat does not serve: refuse the handshake."""
    message.reply_channel.send({"close": True})


class ChatConsumer(JsonWebsocketConsumer):
    http_user = True  # message.user from the handshake's session cookie, kept for the socket

    def connect(self, message: Any, **kwargs: Any) -> None:
        user = message.user
        if not user.is_authenticated:
            self.close()  # before accept: the handshake is refused (403)
            return
        self.accept()
        message.channel_session["rooms"] = []
        rooms = [room.as_dict() for room in Room.objects.visible_to(user)]
        self.send({"hello": user.get_username(), "staff": user.is_staff, "rooms": rooms})

    def receive(self, content: Any = None, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            self.send({"error": "send a JSON object with a command"})
            return
        commands = {"join": self.join, "leave": self.leave, "send": self.say}
        command = commands.get(content.get("command"))
        if command is None:
            self.send(
                {"error": f"unknown command {content.get('command')!r}; use join, leave, send"}
            )
            return
        room = self.find_room(content.get("room"))
        if room is not None:
            command(room, content)

    def disconnect(self, message: Any, **kwargs: Any) -> None:
        for slug in message.channel_session.get("rooms", []):
            Group(f"room-{slug}").discard(message.reply_channel)
            Group(f"room-{slug}").send(self.event(slug, "left"))

    # Commands -----------------------------------------------------------------------------------

    def join(self, room: Room, content: dict[str, Any]) -> None:
        joined = self.joined
        self.send({"joined": room.slug, "title": room.title, "history": room.history()})
        if room.slug not in joined:
            Group(room.group_name).add(self.message.reply_channel)
            self.message.channel_session["rooms"] = [*joined, room.slug]
            Group(room.group_name).send(self.event(room.slug, "joined"))

    def leave(self, room: Room, content: dict[str, Any]) -> None:
        joined = self.joined
        if room.slug in joined:
            Group(room.group_name).discard(self.message.reply_channel)
            self.message.channel_session["rooms"] = [slug for slug in joined if slug != room.slug]
            Group(room.group_name).send(self.event(room.slug, "left"))
        self.send({"left": room.slug})

    def say(self, room: Room, content: dict[str, Any]) -> None:
        if room.slug not in self.joined:
            self.send({"error": "join the room before sending to it", "room": room.slug})
            return
        text = content.get("message")
        if not isinstance(text, str) or not text.strip():
            self.send({"error": "message must be non-empty text", "room": room.slug})
            return
        if len(text) > MAX_MESSAGE_LENGTH:
            self.send({"error": f"messages are at most {MAX_MESSAGE_LENGTH} characters"})
            return
        said = Message.objects.create(room=room, user=self.message.user, text=text)
        self.group_send(room.group_name, said.as_event())

    # Helpers ------------------------------------------------------------------------------------

    @property
    def joined(self) -> list[str]:
        return list(self.message.channel_session.get("rooms", []))

    def find_room(self, slug: Any) -> Room | None:
        """The room named by a command, if it exists and this user may be in it."""
        room = Room.objects.filter(slug=slug).first() if isinstance(slug, str) else None
        if room is None:
            self.send({"error": f"no room {slug!r}", "room": slug})
            return None
        if not room.may_join(self.message.user):
            logger.info("%s may not join %s", self.message.user, room.slug)
            self.send({"error": "this room is for staff only", "room": room.slug})
            return None
        return room

    def event(self, slug: str, event: str) -> dict[str, Any]:
        username = self.message.user.get_username()
        return {"text": self.encode_json({"room": slug, "event": event, "user": username})}
