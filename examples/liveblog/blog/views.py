from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from blog.models import Liveblog


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "blog/index.html", {"liveblogs": Liveblog.objects.order_by("title")})


def liveblog(request: HttpRequest, slug: str) -> HttpResponse:
    blog = get_object_or_404(Liveblog, slug=slug)
    return render(request, "blog/liveblog.html", {"liveblog": blog, "posts": blog.posts.all()[:50]})
