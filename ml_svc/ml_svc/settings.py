"""ml_svc settings: read once from config/ml.yaml and the environment."""

from __future__ import annotations

from kit.config import load_config
from kit.settings_base import INTERNAL_MIDDLEWARE, REST_FRAMEWORK_INTERNAL, common_settings, database_settings
from kit.settings_constants import DEFAULT_AUTO_FIELD, LANGUAGE_CODE, TIME_ZONE, USE_TZ  # noqa: F401

CONFIG = load_config("ml")
SERVICE_NAME, DEBUG, ALLOWED_HOSTS, SECRET_KEY, SERVICE_TOKEN, LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = common_settings(CONFIG)

# Only the task queue lives here; everything durable goes to storage_svc.
DATABASES = {"default": database_settings(CONFIG.text("database_url"))}
STORAGE_URL = CONFIG.text("storage_url")
COLLECTOR_URL = CONFIG.text("collector_url")
PEER_TIMEOUT_S = CONFIG.number("peer_timeout_s")
ALIAS_REFRESH_S = CONFIG.number("alias_refresh_s")
SHADOW_SHARE = CONFIG.number("shadow_share")
WEBHOOK_TIMEOUT_S = CONFIG.number("webhook_timeout_s")
WEBHOOK_TICK_S = CONFIG.number("webhook_tick_s")
WEBHOOK_CA_BUNDLE = CONFIG.text("webhook_ca_bundle")
TORCH_THREADS = CONFIG.integer("torch_threads")
WORKER_TORCH_THREADS = CONFIG.integer("worker_torch_threads")
SERVING_PRECISION = CONFIG.choice("serving_precision", ("float32", "int8"))
INT8_MAX_ACCURACY_DROP = CONFIG.number("int8_max_accuracy_drop")
DEFAULT_ARCHITECTURE = CONFIG.text("default_architecture")
FIRST_MODEL_TIME_BUDGET_S = CONFIG.integer("first_model_time_budget_s")
STORAGE_RETRY_WINDOW_S = CONFIG.number("storage_retry_window_s")
MAX_PIXELS_PER_REQUEST = CONFIG.integer("max_pixels_per_request")

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
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "webhooks"]}}
