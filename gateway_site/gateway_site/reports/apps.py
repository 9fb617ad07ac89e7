from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "gateway_site.reports"
