"""collector_svc settings: read once from config/collector.yaml and the environment."""

from __future__ import annotations

from kit.config import load_config
from kit.settings_base import INTERNAL_MIDDLEWARE, REST_FRAMEWORK_INTERNAL, common_settings

CONFIG = load_config("collector")
globals().update(common_settings(CONFIG))

# The collector stores nothing durable: no database.
DATABASES: dict = {}
MAX_BATCH_SIZE = int(CONFIG.get("max_batch_size"))

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "sources"]
MIDDLEWARE = [*INTERNAL_MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "collector_svc.urls"
WSGI_APPLICATION = "collector_svc.wsgi.application"
REST_FRAMEWORK = REST_FRAMEWORK_INTERNAL
