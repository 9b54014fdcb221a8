"""What smsrouter stores: who talked (Backend, Connection, Contact) and what was said (Message).

The Message row, not any task or channel message, is the record of an SMS: every later
stage (routing, sending, delivery reports, recovery) starts from its id and its status.
"""

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

# Django's own words for this would be a RuntimeError about an app_label, on the first
# model below; and no system check can say it, since smsrouter's AppConfig registers them.
if apps.apps_ready and not apps.is_installed("smsrouter"):
    raise ImproperlyConfigured(
        'smsrouter.models was imported, but smsrouter is not an installed app: add '
        '"smsrouter" to INSTALLED_APPS in your settings.'
    )


class Backend(models.Model):
    """One name of INSTALLED_BACKENDS, as messages refer to it."""

    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A person, who may reach us through several connections."""

    name = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or f"Contact {self.pk}"


class Connection(models.Model):
    """A phone number (or other address) on one backend."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="connections")
    identity = models.CharField(max_length=100)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="connections"
    )
    opted_out_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the number sent STOP (or its gateway said it had opted out): nothing "
                  "but the START confirmation is sent to it until it sends START.",
    )
    in_session = models.BooleanField(
        default=False, db_default=False,  # a database default too: raw INSERTs omit it
        help_text="Whether the number has an active conversation session (set by "
                  "smsrouter.contrib.conversations): read back by each inbound message's "
                  "INSERT, so that a message with none costs no query of the sessions.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["backend", "identity"], name="smsrouter_connection_unique")
        ]
        # Few numbers opt out: the admin's filter and the sender's check read only those.
        indexes = [
            models.Index(fields=["opted_out_at"], condition=Q(opted_out_at__isnull=False),
                         name="smsrouter_opted_out"),
        ]

    def __str__(self) -> str:
        return f"{self.identity} via {self.backend}"


#: The error of an outgoing message not sent because its number opted out: no gateway saw it.
OPTED_OUT = "not sent: the number opted out (it may send START to subscribe again)"


class Direction(models.TextChoices):
    IN = "in", "incoming"
    OUT = "out", "outgoing"


class Status(models.TextChoices):
    RECEIVED = "received"
    HANDLED = "handled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class Message(models.Model):
    """One SMS, in or out.

    `backend` repeats `connection.backend` so that the database itself can refuse a second
    copy of a gateway's message id: gateways retry webhooks, and a retry must not be routed.
    """

    direction = models.CharField(max_length=3, choices=Direction.choices)
    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    text = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(
        default=1, help_text="How many SMS the text is sent or billed as (GSM-7 or UCS-2)."
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    in_response_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    fields = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a send was tried."
    )
    due_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Not to be sent before this time: a scheduled send, or a retry's backoff.",
    )
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the gateway accepted it (outgoing messages)."
    )
    reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When a delivery report last moved its status."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["backend", "direction", "external_id"],
                condition=Q(external_id__isnull=False),
                name="smsrouter_message_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["connection", "created_at"], name="smsrouter_conversation"),
            models.Index(fields=["status", "updated_at"], name="smsrouter_status_age"),
            models.Index(fields=["status", "due_at"], name="smsrouter_status_due"),
        ]

    def __str__(self) -> str:
        arrow = "←" if self.direction == Direction.IN else "→"
        return f"{arrow} {self.connection.identity}: {self.text[:40]}"


class Lease(models.Model):
    """Whose turn it is to run a periodic job: one row per job, taken by an UPDATE that
    only one process can win per period (see smsrouter.scheduler)."""

    name = models.CharField(max_length=200, unique=True)
    due_at = models.DateTimeField(help_text="When the job may next be taken.")
    holder = models.CharField(max_length=100, blank=True, help_text="Who took it last.")

    def __str__(self) -> str:
        return f"{self.name} (due {self.due_at:%Y-%m-%d %H:%M:%S})"


class Heartbeat(models.Model):
    """The last sign of life of something that must run somewhere: a sender's scheduler,
    the sweep, an SMPP bind. One row per name, written by whichever process does it, so
    that /ready/ and /metrics, in any process, can tell whether it still runs."""

    name = models.CharField(max_length=200, unique=True)
    holder = models.CharField(max_length=100, blank=True, help_text="host:pid of the last writer.")
    beat_at = models.DateTimeField(help_text="When it last showed it was alive.")
    state = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    def __str__(self) -> str:
        return f"{self.name} ({self.holder}, {self.beat_at:%Y-%m-%d %H:%M:%S})"


class PendingPart(models.Model):
    """One part of a concatenated SMS, kept until its whole text is accepted (smsrouter.parts).

    A part is answered as received once this row is written, so none is lost if the process
    dies. Used parts stay for a while (`used_at`), so that a gateway's retry of a part whose
    text was already routed is known as such rather than starting a new group.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="parts")
    reference = models.CharField(max_length=20)
    total = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    fields = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    received_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(
        null=True, blank=True, help_text="When its text was accepted as a message."
    )

    class Meta:
        constraints = [
            # Only among unused parts: an 8-bit reference comes round again soon.
            models.UniqueConstraint(
                fields=["connection", "reference", "total", "number"],
                condition=Q(used_at__isnull=True),
                name="smsrouter_pendingpart_unique",
            )
        ]

    def __str__(self) -> str:
        return f"part {self.number}/{self.total} of {self.reference} from {self.connection}"


class SubmittedPart(models.Model):
    """One part of a long outgoing message, sent separately with an id of its own.

    A gateway reports on each part apart (an SMPP receipt per submit_sm), and the message
    keeps only the first part's id: these rows let every part's report find the message,
    which is delivered once all its parts are, and failed as soon as one fails.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="submitted_parts")
    number = models.PositiveSmallIntegerField()
    external_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "number"],
                                               name="smsrouter_submittedpart_unique")]

    def __str__(self) -> str:
        return f"part {self.number} ({self.external_id}) of message {self.message_id}"
