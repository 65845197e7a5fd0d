import time

from django.http import HttpRequest, HttpResponse


def slow(request: HttpRequest) -> HttpResponse:
    seconds = float(request.GET.get("seconds", "2"))
    time.sleep(seconds)
    return HttpResponse(f"slept {seconds}")


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("this view fails on purpose")
