"""A support person finds a message by number or text, and filters by status, backend, direction."""

import pytest

import smsrouter
from smsrouter.models import Backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def messages(settings, django_capture_on_commit_callbacks):
    """Two conversations; the reply through the down gateway failed (no attempts left)."""
    settings.INSTALLED_BACKENDS = {
        "a": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "b": {"ENGINE": "tests.backends.DownBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.incoming("a", "+255700000001", "echo malaria case")
        smsrouter.incoming("b", "+255711111111", "echo stock out")


def changelist(admin_client, **params):
    response = admin_client.get("/admin/smsrouter/message/", params)
    assert response.status_code == 200
    return [str(m) for m in response.context["cl"].result_list]


def test_search_by_identity_and_by_text(admin_client, messages):
    assert changelist(admin_client, q="+255711") == ["→ +255711111111: stock out",
                                                    "← +255711111111: echo stock out"]
    assert changelist(admin_client, q="echo malaria") == ["← +255700000001: echo malaria case"]


def test_filter_by_status_backend_and_direction(admin_client, messages):
    assert changelist(admin_client, status__exact="failed") == ["→ +255711111111: stock out"]
    assert changelist(admin_client, status__exact="sent") == ["→ +255700000001: malaria case"]
    assert len(changelist(admin_client, backend__id__exact=Backend.objects.get(name="a").pk)) == 2
    assert len(changelist(admin_client, direction__exact="in")) == 2


@pytest.mark.parametrize("model", ["backend", "connection", "contact", "message"])
def test_every_model_has_working_admin_pages(admin_client, messages, model):
    assert admin_client.get(f"/admin/smsrouter/{model}/").status_code == 200
    assert admin_client.get(f"/admin/smsrouter/{model}/add/").status_code == 200
    assert admin_client.get(f"/admin/smsrouter/{model}/1/change/").status_code in (200, 302)
