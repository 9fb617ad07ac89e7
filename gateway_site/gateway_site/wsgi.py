import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from gateway_site.api import hot  # noqa: E402
from gateway_site.scenarios import limits, predicting  # noqa: E402
from kit import tracing  # noqa: E402
from kit.hotpath import HotPaths  # noqa: E402

# Token-authenticated JSON predictions skip Django's machinery (kit/hotpath.py); the rest is Django.
# Requests traced when an OTLP endpoint is configured (kit/tracing.py).
application = tracing.traced_app(HotPaths(
    django_application, {("POST", "/api/predictions"): hot.predictions}, service=settings.SERVICE_NAME,
    authenticate=hot.token_viewer, max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, applies=hot.applies,
), settings.SERVICE_NAME)


def shutdown() -> None:
    """gunicorn's worker_exit hook (config/gunicorn.conf.py): waiting predictions are finished first."""
    predicting.close()
    limits.close()


application.shutdown = shutdown
