from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "smsrouter.contrib.conversations"
    label = "conversations"
    verbose_name = "SMS conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from smsrouter.contrib.conversations import checks, sessions

        checks.register()
        sessions.connect_opt_out()
