"""Views of the test project: what the HTTP handler tests exercise."""

from django.contrib.auth import views as auth_views
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from channelworks import Group

BIG_SIZE = 1_300_000


class StampMiddleware:
    """Proves the middleware chain runs: stamps every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Stamp"] = "stamped"
        return response


def inspect(request):
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "path_info": request.path_info,
            "get": request.GET.dict(),
            "scheme": request.scheme,
            "host": request.get_host(),
            "remote_addr": request.META.get("REMOTE_ADDR"),
            "x_test": request.headers.get("X-Test"),
            "user": request.user.username or "anonymous",
        }
    )


@csrf_exempt
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


@csrf_exempt
def form_post(request):
    return JsonResponse({"name": request.POST.get("name"), "files": sorted(request.FILES)})


def protected_form(request):
    if request.method == "POST":
        return HttpResponse("accepted " + request.POST.get("name", ""))
    return render(request, "form.html")


def me(request):
    return HttpResponse(request.user.username if request.user.is_authenticated else "anonymous")


def counter(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return HttpResponse(str(request.session["count"]))


def stream(request):
    def parts():
        for number in range(5):
            yield f"part{number};".encode()

    return StreamingHttpResponse(parts(), content_type="text/plain")


def big(request):
    return HttpResponse(b"x" * BIG_SIZE, content_type="application/octet-stream")


def broken(request):
    raise RuntimeError("this view is broken on purpose")


def notify(request):
    """A view pushing to a group: what a WSGI (gunicorn) process of the project does."""
    Group("notes").send({"text": request.GET.get("text", "")})
    return HttpResponse("sent")


login = auth_views.LoginView.as_view(template_name="login.html")
