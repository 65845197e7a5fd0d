from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rooms.models import Room


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The chat page; the rooms and messages come over the page's WebSocket."""
    rooms = Room.objects.visible_to(request.user)
    return render(request, "rooms/index.html", {"rooms": rooms})
