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
# An upload's batches carry base64 images in JSON, each decoded from its file when asked for.
MAX_UPLOAD_BATCH = 1000
STORAGE_URL = CONFIG.text("storage_url")
PEER_TIMEOUT_S = CONFIG.number("peer_timeout_s")
MNIST_DIR = str(CONFIG.path("mnist_dir")) if CONFIG.get("mnist_dir") else ""
MNIST_MIRRORS = CONFIG.text("mnist_mirrors")
FASHION_MNIST_DIR = str(CONFIG.path("fashion_mnist_dir")) if CONFIG.get("fashion_mnist_dir") else ""
FASHION_MNIST_MIRRORS = CONFIG.text("fashion_mnist_mirrors")
DOWNLOAD_CACHE_DIR = CONFIG.path("download_cache_dir")
DOWNLOAD_TIMEOUT_S = CONFIG.number("download_timeout_s")
UPLOAD_DIR = CONFIG.path("upload_dir")
UPLOAD_KEEP_HOURS = CONFIG.number("upload_keep_hours")
UPLOAD_MAX_BYTES = CONFIG.integer("upload_max_bytes")
UPLOAD_MAX_IMAGES = CONFIG.integer("upload_max_images")
SCORE_MAX_IMAGES = CONFIG.integer("score_max_images")
UPLOAD_MAX_UNPACKED_BYTES = CONFIG.integer("upload_max_unpacked_bytes")
UPLOAD_MAX_RATIO = CONFIG.integer("upload_max_ratio")
UPLOAD_MAX_PIXELS = CONFIG.integer("upload_max_pixels")
# Uploaded files reach the collector whole (the gateway checked their size); Django keeps them in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1
LOG_FILE = CONFIG.path("log_file")
LOG_TAIL_MAX = CONFIG.integer("log_tail_max")

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "collector_svc.sources"]
MIDDLEWARE = [*INTERNAL_MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "collector_svc.urls"
WSGI_APPLICATION = "collector_svc.wsgi.application"
REST_FRAMEWORK = REST_FRAMEWORK_INTERNAL
