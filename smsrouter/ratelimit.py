"""A backend's `rate_limit` (messages per second), shared by every worker that sends.

Counts live in Django's cache, so configure a cache that all workers share (Redis, or
the database cache) when more than one process sends: `manage.py check` warns otherwise.
One-second windows: simple, and gateways state their limits per second.
"""

import asyncio
import time

from django.core.cache import cache


async def take(backend_name: str, wanted: int, per_second: float) -> int:
    """Wait until at least one message may be sent; how many of `wanted` may go now."""
    limit = max(1, int(per_second))
    while True:
        window = int(time.time())
        key = f"smsrouter:rate:{backend_name}:{window}"
        await cache.aadd(key, 0, timeout=5)
        used = await cache.aincr(key, wanted)
        granted = max(0, min(wanted, limit - (used - wanted)))
        if granted < wanted:
            await cache.adecr(key, wanted - granted)  # give back what we may not use
        if granted:
            return granted
        await asyncio.sleep(window + 1 - time.time())
