"""Only the inbound webhook: the same path as smsrouter's, /backend/kannel/."""

from django.urls import path
from rapidsms.backends.kannel.views import KannelBackendView

urlpatterns = [
    path("backend/kannel/", KannelBackendView.as_view(backend_name="kannel")),
]
