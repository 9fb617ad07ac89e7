"""storage_svc settings: read once from config/storage.yaml and the environment."""

from __future__ import annotations

from datetime import timedelta

from kit.config import REPO_ROOT, load_config
from kit.settings_base import INTERNAL_MIDDLEWARE, REST_FRAMEWORK_INTERNAL, common_settings, database_settings
from kit.settings_constants import DEFAULT_AUTO_FIELD, LANGUAGE_CODE, TIME_ZONE, USE_TZ  # noqa: F401
from kit.settings_login import AUTHENTICATION_BACKENDS, AXES_LOCKOUT_PARAMETERS, AXES_RESET_ON_SUCCESS  # noqa: F401

CONFIG = load_config("storage", aliases={"database_url": "DATABASE_URL"})
SERVICE_NAME, DEBUG, ALLOWED_HOSTS, SECRET_KEY, SERVICE_TOKEN, LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = common_settings(CONFIG)


DATABASES = {"default": database_settings(CONFIG.text("database_url"))}
BLOB_BACKEND = CONFIG.choice("blob_backend", ("local", "s3"))
BLOB_DIR = CONFIG.path("blob_dir")
S3_ENDPOINT_URL = CONFIG.text("s3_endpoint_url")
S3_BUCKET = CONFIG.text("s3_bucket")
S3_REGION = CONFIG.text("s3_region")
S3_TIMEOUT_S = CONFIG.number("s3_timeout_s")
PAGE_SIZE = CONFIG.integer("page_size")
RUN_HEARTBEAT_TIMEOUT_S = CONFIG.integer("run_heartbeat_timeout_s")
RUN_QUEUE_TIMEOUT_S = CONFIG.integer("run_queue_timeout_s")
RAW_IMAGE_MAX_BYTES = CONFIG.integer("raw_image_max_bytes")
RAW_IMAGES_PER_USER = CONFIG.integer("raw_images_per_user")
PREDICTION_RETENTION_DAYS = CONFIG.integer("prediction_retention_days")
AUTO_ROLLBACK = CONFIG.flag("auto_rollback")
ROLLBACK_WINDOW = CONFIG.integer("rollback_window")
ROLLBACK_MIN_PREDICTIONS = CONFIG.integer("rollback_min_predictions")
ROLLBACK_MARGIN = CONFIG.number("rollback_margin")
ROLLBACK_WATCH_HOURS = CONFIG.integer("rollback_watch_hours")
WEBHOOK_ALLOW_PRIVATE = CONFIG.flag("webhook_allow_private")
WEBHOOK_MAX_ATTEMPTS = CONFIG.integer("webhook_max_attempts")
WEBHOOK_RETRY_BASE_S = CONFIG.number("webhook_retry_base_s")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    "storage_svc.registry",
]
MIDDLEWARE = [
    *INTERNAL_MIDDLEWARE,
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
]
# The Django admin's login (/admin/) is throttled like the gateway's.
AXES_FAILURE_LIMIT = CONFIG.integer("login_failure_limit")
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG.integer("login_lockout_minutes"))
ROOT_URLCONF = "storage_svc.urls"
WSGI_APPLICATION = "storage_svc.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
STATIC_ROOT = REPO_ROOT / "var" / "static" / "storage"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder before collectstatic
REST_FRAMEWORK = REST_FRAMEWORK_INTERNAL
