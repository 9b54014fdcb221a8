"""Accepting inbound messages: stored, then routed here or handed to a worker.

`incoming()` accepts one message in the caller's thread. Webhooks go through `together`:
the messages of concurrent requests are accepted in one transaction, with one INSERT for
their rows and one for their replies, and each request is answered once it has committed
(see `smsrouter.groupcommit`).
"""

from functools import partial

from django.db import transaction

from smsrouter import dispatch, inbound
from smsrouter.groupcommit import GroupCommit, together_or_alone
from smsrouter.inbound import Submitted
from smsrouter.messages import IncomingMessage, OutgoingMessage

Accepted = tuple[IncomingMessage, list[OutgoingMessage]]


def accept(items: list[Submitted], *, batch: bool = True) -> list[Accepted]:
    """Store the messages, then route them with blocking routers (inline mode) or hand
    their ids to a worker once committed. Returns each with its replies still to send.

    A batch runs in one transaction, answered only once it has committed; a single
    message (`batch=False`) commits as it goes, as the caller's code would.
    """
    stored = inbound.store_many(items) if batch else [inbound.store(*items[0])]
    if dispatch.mode() != dispatch.INLINE:
        if new_ids := [msg.id for msg, is_new in stored if is_new]:
            transaction.on_commit(partial(dispatch.route_later, *new_ids))
        return [(msg, []) for msg, _ in stored]
    new = [msg for msg, is_new in stored if is_new]
    ready = dict(zip(map(id, new), inbound.route_many(new, isolated=batch), strict=True))
    return [(msg, ready[id(msg)] if is_new else []) for msg, is_new in stored]


def accept_one(item: Submitted) -> Accepted:
    """`accept()` for one message, in the caller's transaction or none: `incoming()`."""
    return accept([item], batch=False)[0]


def accept_batch(items: list[Submitted]) -> list[Accepted | Exception]:
    """Accept concurrent webhooks' messages in one transaction, or if that fails, one by one."""
    return together_or_alone(items, accept, accept_one, "messages")


#: Where webhooks' messages wait to be accepted together.
together: GroupCommit[Submitted, Accepted] = GroupCommit(accept_batch)
