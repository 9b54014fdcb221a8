"""Database connections in threads and processes that outlive requests.

Django replaces a connection that an error left unusable (the database restarted, say)
between requests, through the request signals. The group commit's thread and Celery
workers that keep their connections (CELERY_DB_REUSE_MAX) see no requests, so they call
this before each batch or task instead.
"""

from django.db import connections


def drop_broken_connections() -> None:
    """Close the connections an error left unusable; keep working ones open, however old."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.errors_occurred = False
            if not connection.is_usable():
                connection.close()
