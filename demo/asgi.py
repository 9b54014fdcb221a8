"""The demo's ASGI root, served by `make run` (uvicorn demo.asgi:application).

HTTP (apps' /res/ resources first, then Django), the httptester's WebSockets, the worker
channels of SMSROUTER_PROCESSING = "channels", and lifespan, from one ProtocolTypeRouter.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django_asgi_app = get_asgi_application()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from smsrouter.asgi import build_application  # noqa: E402

application = build_application(ASGIStaticFilesHandler(django_asgi_app))
