"""A middleware that answers every request itself, to show which requests cross Django's stack."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class Teapot:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("short and stout", status=418)
