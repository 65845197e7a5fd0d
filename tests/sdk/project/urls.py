from django.urls import path

from tests.sdk.project import views

urlpatterns = [
    path("inspect/", views.inspect),
    path("echo/", views.echo),
    path("form-post/", views.form_post),
    path("form/", views.protected_form),
    path("me/", views.me),
    path("counter/", views.counter),
    path("stream/", views.stream),
    path("big/", views.big),
    path("broken/", views.broken),
    path("login/", views.login),
    path("notify/", views.notify),
]
