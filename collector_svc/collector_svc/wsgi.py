import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_svc.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from kit import tracing  # noqa: E402

# Requests traced when an OTLP endpoint is configured (kit/tracing.py); otherwise the Django application itself.
application = tracing.traced_app(django_application, settings.SERVICE_NAME)
