"""Rooms (some only for staff) and the messages said in them."""

from typing import Any

from django.conf import settings
from django.db import models

HISTORY_LENGTH = 50
MAX_MESSAGE_LENGTH = 2000


class RoomQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> "RoomQuerySet":
        """The rooms ``user`` may see and join: all for staff, the open ones for others."""
        if user.is_authenticated and user.is_staff:
            return self.all()
        return self.filter(staff_only=False)


class Room(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    staff_only = models.BooleanField(default=False, help_text="only staff users may join")

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["staff_only", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        """The channel-layer group of the sockets in this room."""
        return f"room-{self.slug}"

    def may_join(self, user: Any) -> bool:
        return user.is_authenticated and (user.is_staff or not self.staff_only)

    def as_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "staff_only": self.staff_only}

    def history(self) -> list[dict[str, Any]]:
        recent = self.messages.select_related("user").order_by("-id")[:HISTORY_LENGTH]
        return [message.as_event() for message in reversed(recent)]


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"

    def as_event(self) -> dict[str, Any]:
        """What the sockets in the room get when this message is said."""
        return {
            "room": self.room.slug,
            "id": self.pk,
            "user": self.user.get_username(),
            "message": self.text,
            "created": self.created.isoformat(),
        }
