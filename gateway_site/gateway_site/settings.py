"""gateway_site settings: read once from config/gateway.yaml and the environment."""

from __future__ import annotations

from pathlib import Path

import plotly

from kit.config import REPO_ROOT, load_config
from kit.settings_base import common_settings, database_settings

CONFIG = load_config("gateway")
globals().update(common_settings(CONFIG))

# Users, sessions, API tokens and the audit log; never domain data.
DATABASES = {"default": database_settings(str(CONFIG.get("database_url")))}
STORAGE_URL = str(CONFIG.get("storage_url"))
COLLECTOR_URL = str(CONFIG.get("collector_url"))
ML_URL = str(CONFIG.get("ml_url"))
PEER_TIMEOUT_S = float(CONFIG.get("peer_timeout_s"))
PAGE_SIZE = int(CONFIG.get("page_size"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_htmx",
    "accounts",
    "api",
    "web",
    "reports",
]
MIDDLEWARE = [
    "kit.metrics.MetricsMiddleware",
    "kit.requestlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "web.middleware.PeerErrorPageMiddleware",
]
ROOT_URLCONF = "gateway_site.urls"
WSGI_APPLICATION = "gateway_site.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [REPO_ROOT / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.roles.roles_context",
            ]
        },
    }
]
STATIC_URL = "/static/"
# plotly's own bundled plotly.min.js, served locally (no CDN).
STATICFILES_DIRS = [("plotly", str(Path(plotly.__file__).parent / "package_data"))]
STATIC_ROOT = REPO_ROOT / "var" / "static" / "gateway"
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = bool(CONFIG.get("secure_cookies"))
SESSION_COOKIE_HTTPONLY = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "kit.errors.drf_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
