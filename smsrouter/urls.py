"""`path("", include("smsrouter.urls"))` gives every backend its webhook and status URLs,
and operations their /metrics, /health/ and /ready/."""

from django.urls import path

from smsrouter import health, metrics, views

app_name = "smsrouter"
urlpatterns = [
    path("backend/<str:backend_name>/", views.inbound, name="inbound"),
    path("backend/<str:backend_name>/status/", views.status, name="status"),
    path("metrics", metrics.metrics, name="metrics"),
    path("health/", health.health, name="health"),
    path("ready/", health.ready, name="ready"),
]
