"""collector_svc settings: read once from config/collector.yaml and the environment."""

from __future__ import annotations

from kit.config import load_config
from kit.settings_base import INTERNAL_MIDDLEWARE, REST_FRAMEWORK_INTERNAL, common_settings
from kit.settings_constants import DEFAULT_AUTO_FIELD, LANGUAGE_CODE, TIME_ZONE, USE_TZ  # noqa: F401

CONFIG = load_config("collector")
SERVICE_NAME, DEBUG, ALLOWED_HOSTS, SECRET_KEY, SERVICE_TOKEN, LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = common_settings(CONFIG)

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
