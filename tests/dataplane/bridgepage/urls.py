from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [path("bridge/", TemplateView.as_view(template_name="bridgepage/bridge.html"))]
