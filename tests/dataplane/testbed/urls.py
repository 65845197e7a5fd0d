from django.urls import include, path

from tests.dataplane.testbed import views

urlpatterns = [
    path("slow/", views.slow),
    path("broken/", views.broken),
    path("", include("chat.urls")),
]
