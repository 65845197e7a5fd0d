"""The liveblog case: saving a post pushes it to everyone watching."""

import json

from django.db import models

from channelworks import Group


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(default="")

    class Meta:
        app_label = "liveblog"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        # Sent once the surrounding transaction commits (at once in autocommit mode).
        Group("liveblog").send(
            {"text": json.dumps({"id": self.pk, "title": self.title})}, on_commit=True
        )


class Note(models.Model):
    """Sends without waiting for the transaction: the plain Channels 1 behaviour."""

    text = models.CharField(max_length=200)

    class Meta:
        app_label = "liveblog"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        Group("notes").send({"text": self.text})
