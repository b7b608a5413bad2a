from django.urls import path

from tests.wsgi_django import views

urlpatterns = [
    path("hello/<str:name>", views.hello, name="hello"),
    path("echo", views.echo),
    path("stream", views.stream),
    path("csrf", views.protected),
    path("boom", views.boom),
]
