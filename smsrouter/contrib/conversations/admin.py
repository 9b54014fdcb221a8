"""Sessions and answers in the admin: who is where in which conversation, where people
quit (the "closed at step" filter of ended sessions), and the answers as CSV."""

import io

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from smsrouter.contrib.conversations.export import write_csv
from smsrouter.contrib.conversations.models import Answer, Session


class AnswerInline(admin.TabularInline):
    model = Answer
    extra = 0
    fields = ["step", "text", "value", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["pk", "connection", "conversation", "status", "step", "closed_at_step",
                    "retries", "started_at", "updated_at", "expires_at"]
    list_filter = ["conversation", "status", "step", "closed_at_step"]
    list_select_related = ["connection__backend"]
    search_fields = ["connection__identity", "connection__contact__name"]
    readonly_fields = ["connection", "conversation", "started_at", "closed_at", "closed_at_step"]
    date_hierarchy = "started_at"
    inlines = [AnswerInline]
    actions = ["export_answers"]

    @admin.action(description="Export the answers of the selected sessions as CSV", permissions=["view"])
    def export_answers(self, request: HttpRequest, queryset: QuerySet[Session]) -> HttpResponse:
        out = io.StringIO()
        write_csv(queryset.select_related("connection__backend").order_by("pk"), out)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="answers.csv"'
        return response


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["session", "step", "text", "value", "created_at"]
    list_filter = ["session__conversation", "step"]
    list_select_related = ["session"]
    search_fields = ["text", "session__connection__identity"]
    raw_id_fields = ["session"]
