"""collector_svc settings: read once from config/collector.yaml and the environment."""

from __future__ import annotations

from kit.config import load_config
from kit.settings_base import (  # noqa: F401 -- Django reads them from here
    DEFAULT_AUTO_FIELD,
    INTERNAL_MIDDLEWARE,
    LANGUAGE_CODE,
    REST_FRAMEWORK_INTERNAL,
    TIME_ZONE,
    USE_TZ,
    common_settings,
)

CONFIG = load_config("collector")
_common = common_settings(CONFIG)
SERVICE_NAME, DEBUG, ALLOWED_HOSTS = _common.service_name, _common.debug, _common.allowed_hosts
SECRET_KEY, SERVICE_TOKEN = _common.secret_key, _common.service_token
LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = _common.logging, _common.max_body_bytes

# The collector stores nothing durable: no database.
DATABASES: dict = {}
MAX_BATCH_SIZE = CONFIG.integer("max_batch_size")
STORAGE_URL = CONFIG.text("storage_url")
PEER_TIMEOUT_S = CONFIG.number("peer_timeout_s")
MNIST_DIR = str(CONFIG.path("mnist_dir")) if CONFIG.get("mnist_dir") else ""
MNIST_MIRRORS = CONFIG.text("mnist_mirrors")
FASHION_MNIST_DIR = str(CONFIG.path("fashion_mnist_dir")) if CONFIG.get("fashion_mnist_dir") else ""
FASHION_MNIST_MIRRORS = CONFIG.text("fashion_mnist_mirrors")
DOWNLOAD_CACHE_DIR = CONFIG.path("download_cache_dir")
DOWNLOAD_TIMEOUT_S = CONFIG.number("download_timeout_s")
LOG_FILE = CONFIG.path("log_file")
LOG_TAIL_MAX = CONFIG.integer("log_tail_max")

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "collector_svc.sources"]
MIDDLEWARE = [*INTERNAL_MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "collector_svc.urls"
WSGI_APPLICATION = "collector_svc.wsgi.application"
REST_FRAMEWORK = REST_FRAMEWORK_INTERNAL
