"""The demo's ASGI root, served by `make run` (uvicorn demo.asgi:application).

"channel" serves `manage.py runworker smsrouter.incoming smsrouter.outgoing` when
SMSROUTER_PROCESSING = "channels".
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from smsrouter.consumers import IncomingWorker, OutgoingWorker  # noqa: E402

application = ProtocolTypeRouter({
    "http": ASGIStaticFilesHandler(django_asgi_app),
    "channel": ChannelNameRouter({
        "smsrouter.incoming": IncomingWorker.as_asgi(),
        "smsrouter.outgoing": OutgoingWorker.as_asgi(),
    }),
})
