"""`path("", include("smsrouter.urls"))` gives every backend its webhook and status URLs."""

from django.urls import path

from smsrouter import views

app_name = "smsrouter"
urlpatterns = [
    path("backend/<str:backend_name>/", views.inbound, name="inbound"),
    path("backend/<str:backend_name>/status/", views.status, name="status"),
]
