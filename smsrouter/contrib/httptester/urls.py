"""`path("httptester/", include("smsrouter.contrib.httptester.urls"))`."""

from django.urls import path

from smsrouter.contrib.httptester import views

app_name = "httptester"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:backend_name>/", views.inbound, name="inbound"),
    path("<str:backend_name>/<str:identity>/messages", views.conversation, name="messages"),
]
