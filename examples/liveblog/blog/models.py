"""A liveblog and its posts: saving a post pushes it to every page watching that liveblog."""

import json
from typing import Any

from django.db import models

from channelworks import Group


class Liveblog(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        """The channel-layer group of the sockets watching this liveblog."""
        return f"liveblog-{self.slug}"


class Post(models.Model):
    liveblog = models.ForeignKey(Liveblog, on_delete=models.CASCADE, related_name="posts")
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return self.body[:60]

    def as_event(self) -> dict[str, Any]:
        return {"id": self.pk, "body": self.body, "created": self.created.isoformat()}

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # Everyone watching gets the post once the transaction commits (at once in autocommit):
        # from the admin, a view, `manage.py post` or any other process of the project.
        Group(self.liveblog.group_name).send({"text": json.dumps(self.as_event())}, on_commit=True)
