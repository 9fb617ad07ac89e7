from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "storage_svc.registry"
    verbose_name = "Domain registry"
