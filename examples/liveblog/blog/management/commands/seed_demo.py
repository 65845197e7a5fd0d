"""``manage.py seed_demo``: the demo liveblog and its editor; safe to run again."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from blog.models import Liveblog

EDITOR = ("editor", "editor-liveblog")


class Command(BaseCommand):
    help = "Create (or reset) the 'launch' liveblog and the staff user editor."

    def handle(self, *args: Any, **options: Any) -> None:
        Liveblog.objects.update_or_create(slug="launch", defaults={"title": "Launch day"})
        username, password = EDITOR
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"  {username} / {password}   (posts at /admin/blog/post/add/)")
