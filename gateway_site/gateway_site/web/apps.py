from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "gateway_site.web"
