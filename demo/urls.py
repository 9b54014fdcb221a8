from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="httptester:index"), name="home"),
    path("admin/", admin.site.urls),
    path("httptester/", include("smsrouter.contrib.httptester.urls")),
    path("", include("smsrouter.urls")),
]
