"""The admin's own pages: one number's conversation, with a form to write to it, and the
dashboard. They are served through the ModelAdmins' get_urls() (smsrouter.admin), so the
admin site's login, staff check, CSRF protection and never_cache come with them.

Who may do what: reading a conversation or the dashboard takes the "view message"
permission, as the message list does; writing to a number takes "add message", because
a send stores a new outgoing Message row, exactly what adding one in the admin would be.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

import smsrouter
from smsrouter import charts, dashboard
from smsrouter.exceptions import SmsRouterError
from smsrouter.models import Connection, Message, Status

#: Messages per page of a conversation, newest page first: a number may have thousands.
THREAD_PAGE = 50
#: The longest text the form takes: ten concatenated SMS of GSM-7, more than any reply
#: a support person types, and far below what a gateway refuses.
MAX_TEXT = 1530
#: Statuses a bubble may still leave without a delivery report: the page polls for these.
PENDING = (Status.RECEIVED, Status.QUEUED, Status.SENDING)
VIEW, ADD = "smsrouter.view_message", "smsrouter.add_message"


class SendForm(forms.Form):
    text = forms.CharField(label="Message", max_length=MAX_TEXT,
                           widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def thread(connection: Connection) -> QuerySet[Message]:
    """The connection's messages, newest first (the index on connection, created_at)."""
    return Message.objects.filter(connection=connection).order_by("-created_at", "-pk")


def conversation(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    """The thread as bubbles, a page at a time, and the send form (POST: send, then back
    here, so that a reload does not send twice)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    connection = get_object_or_404(Connection.objects.select_related("backend", "contact"),
                                   pk=object_id)
    can_send = request.user.has_perm(ADD)
    here = reverse(f"{model_admin.admin_site.name}:smsrouter_connection_conversation",
                   args=[connection.pk])
    form = SendForm()
    if request.method == "POST":
        if not can_send:
            raise PermissionDenied
        form = SendForm(request.POST)
        if form.is_valid():
            try:
                sent = smsrouter.send(form.cleaned_data["text"], connection)
            except (SmsRouterError, ValueError) as exc:
                form.add_error(None, str(exc))
            else:
                for message in sent:
                    model_admin.log_addition(request, message.record, "Sent from the conversation page.")
                model_admin.message_user(request, f"Message to {connection.identity} stored; "
                                         "its status below follows it.", messages.SUCCESS)
                return redirect(f"{here}#message-{sent[0].id}")
    page = Paginator(thread(connection), THREAD_PAGE).get_page(request.GET.get("page"))
    bubbles = list(reversed(page.object_list))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Conversation with {connection.identity}",
        "subtitle": f"on {connection.backend.name}",
        "opts": Connection._meta,
        "connection": connection,
        "page": page,
        "bubbles": bubbles,
        "form": form,
        "can_send": can_send,
        "live": page.number == 1,
        "last_id": max((m.pk for m in bubbles), default=0),
        "poll_url": reverse(f"{model_admin.admin_site.name}:smsrouter_connection_messages",
                            args=[connection.pk]),
        "pending": PENDING,
        "media": model_admin.media,
    }
    return TemplateResponse(request, "admin/smsrouter/conversation.html", context)


def conversation_updates(model_admin: admin.ModelAdmin, request: HttpRequest,
                         object_id: int) -> JsonResponse:
    """What the conversation page polls: messages newer than `after` and the current state
    of the `pending` ids, each as its bubble's HTML. Bounded to a page of each.

    Ids are a good enough cursor for a support page: a row whose id is lower than one
    already shown but committed later (possible under PostgreSQL's concurrent writers)
    appears on the next reload."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    connection = get_object_or_404(Connection, pk=object_id)
    after = _int(request.GET.get("after", ""))
    pending = [pk for pk in map(_int, request.GET.get("pending", "").split(",")) if pk][:THREAD_PAGE]
    rows = thread(connection)
    newer = list(rows.filter(pk__gt=after).order_by("pk")[:THREAD_PAGE])
    changed = list(rows.filter(pk__in=pending).exclude(pk__gt=after)) if pending else []
    found = sorted(newer + changed, key=lambda m: (m.created_at, m.pk))
    return JsonResponse({"messages": [
        {"id": m.pk, "status": m.status, "new": m.pk > after,
         "html": render_to_string("admin/smsrouter/bubble.html", {"message": m, "pending": PENDING})}
        for m in found
    ]})


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


def dashboard_page(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The dashboard: counts per hour and per day, failures, the outbox, latency."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    now = timezone.now()
    hours, days = dashboard.hourly(now), dashboard.daily(now)
    names = sorted(set(hours.counts) | set(days.counts))
    rates = {label: dashboard.failure_rates(now - window)
             for label, window in (("24 h", timedelta(hours=24)), ("7 days", timedelta(days=7)))}
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "SMS dashboard",
        "opts": Message._meta,
        "now": now,
        "hourly_chart": charts.stacked_bars(
            "chart-hourly", "Messages per hour over the last 24 hours, by backend",
            [f"{timezone.localtime(start):%H}h" for start in hours.starts],
            [charts.Series(name, hours.counts.get(name, [0] * len(hours.starts))) for name in names],
            label_every=3),
        "daily_chart": charts.stacked_bars(
            "chart-daily", "Messages per day over the last 7 days, by backend",
            [f"{timezone.localtime(start):%a %d}" for start in days.starts],
            [charts.Series(name, days.counts.get(name, [0] * len(days.starts))) for name in names]),
        "hourly_total": hours.total,
        "daily_total": days.total,
        "rates": {label: (found, dashboard.overall(found)) for label, found in rates.items()},
        "outbox": dashboard.outbox_depth(),
        "latency": dashboard.send_latency(now - timedelta(hours=24)),
        "errors": dashboard.top_errors(now - timedelta(days=7)),
        "media": model_admin.media,
    }
    return TemplateResponse(request, "admin/smsrouter/dashboard.html", context)


def conversation_url(connection_id: int, site_name: str = "admin") -> str:
    return reverse(f"{site_name}:smsrouter_connection_conversation", args=[connection_id])

