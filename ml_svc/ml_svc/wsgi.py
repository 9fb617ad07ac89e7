import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ml_svc.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from kit.hotpath import HotPaths  # noqa: E402
from kit.service_auth import hot_service_caller  # noqa: E402
from ml_svc.views import hot_predict, hot_predict_batch  # noqa: E402

# The prediction endpoints skip Django's machinery (kit/hotpath.py); everything else is the Django application.
application = HotPaths(
    django_application, {("POST", "/predict"): hot_predict, ("POST", "/predict/batch"): hot_predict_batch}, service=settings.SERVICE_NAME,
    authenticate=hot_service_caller, max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
)
