"""``manage.py post SLUG TEXT``: add a post to a liveblog from the command line.

It reaches the pages watching through the channel layer of the settings, so run it with the
layer the server uses (e.g. ``CHANNELWORKS_REDIS_MODE=local`` next to ``channelworks dev --layer
local``; the in-memory layer of a plain ``channelworks dev`` cannot be reached from outside).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from blog.models import Liveblog, Post


class Command(BaseCommand):
    help = "Add a post to the liveblog SLUG; every page watching it shows the post at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("text", nargs="+")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            liveblog = Liveblog.objects.get(slug=options["slug"])
        except Liveblog.DoesNotExist:
            raise CommandError(f"no liveblog {options['slug']!r}") from None
        post = Post.objects.create(liveblog=liveblog, body=" ".join(options["text"]))
        self.stdout.write(f"posted #{post.pk} to {liveblog.slug}")
