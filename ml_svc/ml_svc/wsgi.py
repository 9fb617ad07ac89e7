import os
import threading

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ml_svc.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from kit import tracing  # noqa: E402
from kit.hotpath import HotPaths  # noqa: E402
from kit.service_auth import hot_service_caller  # noqa: E402
from ml_svc.views import hot_predict, hot_predict_batch  # noqa: E402

# The prediction endpoints skip Django's machinery (kit/hotpath.py); everything else is the Django application.
# Requests traced when an OTLP endpoint is configured (kit/tracing.py).
application = tracing.traced_app(HotPaths(
    django_application, {("POST", "/predict"): hot_predict, ("POST", "/predict/batch"): hot_predict_batch}, service=settings.SERVICE_NAME,
    authenticate=hot_service_caller, max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
), settings.SERVICE_NAME)



def _warm() -> None:
    """Load (and start quantising) the production version as the process starts, not on its first request."""
    from kit.errors import AppError
    from ml_svc.serving import model_cache

    try:
        model_cache().production()
    except AppError:
        pass  # nothing serves yet, or storage is not up: the first request tries again


if os.environ.get("DIGITLAB_SERVING") == "1":  # set by scripts/serve.py; tests import this module without it
    threading.Thread(target=_warm, name="warm-production", daemon=True).start()
