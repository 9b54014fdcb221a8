from django.apps import AppConfig


class HttpTesterConfig(AppConfig):
    name = "smsrouter.contrib.httptester"
    label = "httptester"
    verbose_name = "SMS HTTP tester"
