"""Admin pages a support person can answer "did my SMS arrive?" with."""

from django.contrib import admin

from smsrouter.models import Backend, Connection, Contact, Message


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


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["identity", "backend", "contact"]
    list_filter = ["backend"]
    list_select_related = ["backend", "contact"]
    search_fields = ["identity", "contact__name"]
    raw_id_fields = ["contact"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "direction", "identity", "backend", "text", "status"]
    list_filter = ["status", "backend", "direction"]
    list_select_related = ["backend", "connection"]
    search_fields = ["connection__identity", "text"]
    date_hierarchy = "created_at"
    raw_id_fields = ["connection", "in_response_to"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(ordering="connection__identity")
    def identity(self, message: Message) -> str:
        return message.connection.identity
