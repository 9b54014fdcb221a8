"""The demo project. Loading its Celery app here makes `delay()` use it in every process."""

from demo.celery import app as celery_app

__all__ = ["celery_app"]
