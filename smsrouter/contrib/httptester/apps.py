from django.apps import AppConfig


class HttpTesterConfig(AppConfig):
    name = "smsrouter.contrib.httptester"
    label = "httptester"
    verbose_name = "SMS HTTP tester"

    def ready(self) -> None:
        from smsrouter.contrib.httptester.live import on_messages_changed
        from smsrouter.signals import messages_changed

        messages_changed.connect(on_messages_changed, dispatch_uid="httptester-live")
