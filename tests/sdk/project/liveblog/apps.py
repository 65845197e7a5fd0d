from django.apps import AppConfig


class LiveblogConfig(AppConfig):
    name = "tests.sdk.project.liveblog"
    label = "liveblog"
