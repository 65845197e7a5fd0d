"""``manage.py seed_demo``: the demo users (and rooms) of the chat example; safe to run again."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from rooms.models import Room

DEMO_USERS = {
    # username: (password, is_staff)
    "alice": ("alice-chat", True),
    "bob": ("bob-chat", False),
}
DEMO_ROOMS = {
    # slug: (title, staff_only)
    "lobby": ("Lobby", False),
    "random": ("Random", False),
    "staff": ("Staff room", True),
}


class Command(BaseCommand):
    help = "Create (or reset) the demo users alice (staff) and bob, and the demo rooms."

    def handle(self, *args: Any, **options: Any) -> None:
        for slug, (title, staff_only) in DEMO_ROOMS.items():
            Room.objects.update_or_create(
                slug=slug, defaults={"title": title, "staff_only": staff_only}
            )
        users = get_user_model()
        for username, (password, staff) in DEMO_USERS.items():
            user, _ = users.objects.get_or_create(username=username)
            user.is_staff = staff
            user.is_superuser = staff
            user.set_password(password)
            user.save()
            role = "staff, sees the staff room and /admin/" if staff else "not staff"
            self.stdout.write(f"  {username} / {password}   ({role})")
