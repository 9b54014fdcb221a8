from django.apps import AppConfig


class SmsRouterConfig(AppConfig):
    name = "smsrouter"
    verbose_name = "SMS router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from smsrouter import checks

        checks.register()
