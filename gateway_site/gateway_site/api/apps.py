from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "gateway_site.api"
