from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt


def hello(request, name):
    return JsonResponse({
        "name": name,
        "path": request.path,
        "path_info": request.path_info,
        "url": reverse("hello", args=["x"]),
        "absolute": request.build_absolute_uri(),
        "query": request.GET.dict(),
    })


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "form": request.POST.dict(), "body": request.body.decode(),
                         "cookie": request.COOKIES.get("c")})


def stream(request):
    return StreamingHttpResponse((b"part%d," % i for i in range(5)), content_type="text/plain")


def protected(request):  # POST without a CSRF token: Django's own 403
    return HttpResponse("should not get here")


def boom(request):
    raise RuntimeError("a Django view that fails")
