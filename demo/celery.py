"""The demo's Celery app: `celery -A demo worker` and `celery -A demo beat`.

Workers route and send when SMSROUTER_PROCESSING = "celery"; beat runs smsrouter's sweeper
every minute and the apps' periodic jobs.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

app = Celery("demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["smsrouter"])


@app.on_after_finalize.connect
def schedule(sender: Celery, **kwargs: object) -> None:
    from smsrouter.tasks import install_beat

    install_beat(sender)
