"""Admin pages a support person can answer "did my SMS arrive?" with: the message list,
each number's conversation (smsrouter.admin_views), the dashboard, and the actions that
retry failed sends and cancel queued ones (smsrouter.admin_actions)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import truncatechars
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from smsrouter import admin_actions, admin_views
from smsrouter.models import Backend, Connection, Contact, Message

#: How much of a text the message list shows; the whole text is in the cell's title.
TEXT_WIDTH = 60


class Styled:
    """The admin's own stylesheet: the message list's widths, bubbles, the dashboard."""

    class Media:
        css = {"all": ["smsrouter/admin.css"]}


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class ConnectionInline(admin.TabularInline):
    model = Connection
    extra = 0
    fields = ["backend", "identity"]
    raw_id_fields = ["backend"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "created_at"]
    search_fields = ["name", "connections__identity"]
    inlines = [ConnectionInline]


class OptedOutFilter(admin.SimpleListFilter):
    """Numbers that sent STOP (or whose gateway said so): nothing is sent to them."""

    title = "opted out"
    parameter_name = "opted_out"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Connection]) -> QuerySet[Connection]:
        if self.value() in ("yes", "no"):
            return queryset.filter(opted_out_at__isnull=self.value() == "no")
        return queryset


@admin.register(Connection)
class ConnectionAdmin(Styled, admin.ModelAdmin):
    list_display = ["identity", "backend", "contact", "opted_out_at", "conversation"]
    list_filter = [OptedOutFilter, "backend"]
    list_select_related = ["backend", "contact"]
    search_fields = ["identity", "contact__name"]
    raw_id_fields = ["contact"]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("<int:object_id>/conversation/",
                 self.admin_site.admin_view(self.conversation_view),
                 name="smsrouter_connection_conversation"),
            path("<int:object_id>/conversation/messages/",
                 self.admin_site.admin_view(self.conversation_updates_view),
                 name="smsrouter_connection_messages"),
        ]
        return own + super().get_urls()

    def conversation_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return admin_views.conversation(self, request, object_id)

    def conversation_updates_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return admin_views.conversation_updates(self, request, object_id)

    @admin.display(description="conversation")
    def conversation(self, connection: Connection) -> str:
        url = admin_views.conversation_url(connection.pk, self.admin_site.name)
        return format_html('<a href="{}">Open</a>', url)


@admin.register(Message)
class MessageAdmin(Styled, admin.ModelAdmin):
    # At 1280 px the admin's two sidebars leave the list about 630 px: each column is kept
    # short (the number carries its backend, the time has no month names) and the text
    # wraps within its width, so that nothing needs a horizontal scroll.
    list_display = ["when", "way", "identity", "status", "short_text"]
    list_display_links = ["when"]
    list_filter = ["status", "backend", "direction"]
    list_select_related = ["backend", "connection"]
    search_fields = ["connection__identity", "text"]
    date_hierarchy = "created_at"
    raw_id_fields = ["connection", "in_response_to"]
    readonly_fields = ["created_at", "updated_at", "sent_at", "reported_at"]
    actions = ["retry_failed", "cancel_queued"]

    def get_urls(self) -> list[URLPattern]:
        own = [path("dashboard/", self.admin_site.admin_view(self.dashboard_view),
                    name="smsrouter_message_dashboard")]
        return own + super().get_urls()

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return admin_views.dashboard_page(self, request)

    @admin.display(ordering="created_at", description="created")
    def when(self, message: Message) -> str:
        return f"{timezone.localtime(message.created_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(ordering="direction", description="in/out")
    def way(self, message: Message) -> str:
        return message.direction

    @admin.display(ordering="connection__identity", description="number · backend")
    def identity(self, message: Message) -> str:
        url = admin_views.conversation_url(message.connection_id, self.admin_site.name)
        return format_html('<a href="{}" title="Open the conversation">{}</a>'
                           '<span class="backend">{}</span>', url,
                           message.connection.identity, message.backend.name)

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        return format_html('<span title="{}">{}</span>', message.text,
                           truncatechars(message.text, TEXT_WIDTH))

    @admin.action(description="Retry selected failed outgoing messages", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        done = admin_actions.retry_failed(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{done.changed} message(s) queued again to send."
                          + _skipped(done, "not failed outgoing messages (or of a backend no "
                                     "longer installed)"),
                          messages.SUCCESS if done.changed else messages.WARNING)

    @admin.action(description="Cancel selected queued messages", permissions=["change"])
    def cancel_queued(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        who = request.user.get_username()
        done = admin_actions.cancel_queued(list(queryset.values_list("pk", flat=True)), who)
        self.message_user(request, f"{done.changed} queued message(s) cancelled."
                          + _skipped(done, "no longer queued"),
                          messages.SUCCESS if done.changed else messages.WARNING)


def _skipped(done: admin_actions.Done, why: str) -> str:
    return f" {done.skipped} skipped: {why}." if done.skipped else ""
