"""Where a conversation stands (Session) and what was answered (Answer).

A session row holds the whole state, so any process (a server, a Celery worker) can take
the next answer: the database, not memory, is the conversation. The answers are kept
twice: as JSON on the session for the next questions, and one row each for analysis.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class SessionStatus(models.TextChoices):
    ACTIVE = "active"
    DONE = "done"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Session(models.Model):
    """One run of a conversation with one connection; at most one active per connection."""

    connection = models.ForeignKey(
        "smsrouter.Connection", on_delete=models.CASCADE, related_name="conversation_sessions"
    )
    conversation = models.CharField(max_length=200, help_text="The conversation's name.")
    step = models.CharField(max_length=100, help_text="The step waiting for an answer.")
    answers = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    retries = models.PositiveSmallIntegerField(
        default=0, help_text="Invalid answers to the current step so far."
    )
    status = models.CharField(max_length=10, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    closed_at_step = models.CharField(
        max_length=100, blank=True, help_text="The step it was at when it ended: where people quit."
    )
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="It expires if no answer comes before this.")
    remind_at = models.DateTimeField(
        null=True, blank=True, help_text="When the question is asked again, if still unanswered."
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection"], condition=Q(status="active"),
                name="conversations_one_active_session",
            )
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="conversations_expiry"),
            models.Index(fields=["status", "remind_at"], name="conversations_reminder"),
            models.Index(fields=["conversation", "status"], name="conversations_by_status"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation} with {self.connection_id} ({self.status} at {self.step})"


class Answer(models.Model):
    """One valid answer to one step, as sent and as parsed."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="answer_rows")
    step = models.CharField(max_length=100)
    text = models.TextField(help_text="The message as it came.")
    value = models.JSONField(null=True, encoder=DjangoJSONEncoder, help_text="The parsed answer.")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["step"], name="conversations_answer_step")]

    def __str__(self) -> str:
        return f"{self.step}: {self.text[:40]}"
