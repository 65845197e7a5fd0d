from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [path("feed/", TemplateView.as_view(template_name="streams/feed.html"))]
