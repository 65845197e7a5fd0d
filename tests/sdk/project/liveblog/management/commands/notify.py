"""``manage.py notify TEXT``: a management command pushing to a group (runs without a loop)."""

from django.core.management.base import BaseCommand

from channelworks import Group


class Command(BaseCommand):
    help = "Send TEXT to everyone in the 'notes' group."

    def add_arguments(self, parser):
        parser.add_argument("text")

    def handle(self, *args, **options):
        Group("notes").send({"text": options["text"]})
