"""The demo's ASGI root, served by `make run` (uvicorn demo.asgi:application).

The same one call as any project's asgi.py (the README's "Adding smsrouter to your Django
project"): HTTP with static files (apps' /res/ resources first, then Django), the
httptester's WebSockets, the worker channels of SMSROUTER_PROCESSING = "channels", and
lifespan, from one ProtocolTypeRouter.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from smsrouter.asgi import get_application  # noqa: E402

application = get_application()
