"""The demo's URLs plus one Django view at a path that an app's resource also claims."""

from django.http import HttpResponse
from django.urls import path

from demo.urls import urlpatterns as demo_urlpatterns

urlpatterns = [
    path("res/probe/hello", lambda request: HttpResponse("from Django")),
    *demo_urlpatterns,
]
