"""ml_svc settings: read once from config/ml.yaml and the environment."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from kit.config import load_config
from kit.settings_base import INTERNAL_MIDDLEWARE, REST_FRAMEWORK_INTERNAL, common_settings, database_settings

CONFIG = load_config("ml")
globals().update(common_settings(CONFIG))

# Only the task queue lives here; everything durable goes to storage_svc.
DATABASES = {"default": database_settings(str(CONFIG.get("database_url")))}
STORAGE_URL = str(CONFIG.get("storage_url"))
COLLECTOR_URL = str(CONFIG.get("collector_url"))
PEER_TIMEOUT_S = float(CONFIG.get("peer_timeout_s"))
ALIAS_REFRESH_S = float(CONFIG.get("alias_refresh_s"))
TORCH_THREADS = int(CONFIG.get("torch_threads"))
WORKER_TORCH_THREADS = int(CONFIG.get("worker_torch_threads"))
SERVING_PRECISION = str(CONFIG.get("serving_precision"))
if SERVING_PRECISION not in ("float32", "int8"):
    raise ImproperlyConfigured(f"ml serving_precision must be float32 or int8, not {SERVING_PRECISION!r}")
INT8_MAX_ACCURACY_DROP = float(CONFIG.get("int8_max_accuracy_drop"))
DEFAULT_ARCHITECTURE = str(CONFIG.get("default_architecture"))
FIRST_MODEL_TIME_BUDGET_S = int(CONFIG.get("first_model_time_budget_s"))
STORAGE_RETRY_WINDOW_S = float(CONFIG.get("storage_retry_window_s"))
MAX_PIXELS_PER_REQUEST = int(CONFIG.get("max_pixels_per_request"))

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "django_tasks",
    "django_tasks_db",
    "ml_svc.apps.MlConfig",
]
MIDDLEWARE = [*INTERNAL_MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "ml_svc.urls"
WSGI_APPLICATION = "ml_svc.wsgi.application"
REST_FRAMEWORK = REST_FRAMEWORK_INTERNAL
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
