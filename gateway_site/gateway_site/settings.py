"""gateway_site settings: read once from config/gateway.yaml and the environment."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import plotly

from kit.config import REPO_ROOT, load_config
from kit.settings_base import common_settings, database_settings
from kit.settings_constants import DEFAULT_AUTO_FIELD, LANGUAGE_CODE, TIME_ZONE, USE_TZ  # noqa: F401
from kit.settings_login import AUTHENTICATION_BACKENDS, AXES_LOCKOUT_PARAMETERS, AXES_RESET_ON_SUCCESS  # noqa: F401

CONFIG = load_config("gateway")
SERVICE_NAME, DEBUG, ALLOWED_HOSTS, SECRET_KEY, SERVICE_TOKEN, LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = common_settings(CONFIG)

# Users, sessions, API tokens and the audit log; never domain data.
DATABASES = {"default": database_settings(CONFIG.text("database_url"))}
STORAGE_URL = CONFIG.text("storage_url")
COLLECTOR_URL = CONFIG.text("collector_url")
ML_URL = CONFIG.text("ml_url")
PEER_TIMEOUT_S = CONFIG.number("peer_timeout_s")
UPLOAD_MAX_BYTES = CONFIG.integer("upload_max_bytes")
PREDICT_TIMEOUT_S = CONFIG.number("predict_timeout_s")
GATE_MAX_ACCURACY_DROP = CONFIG.number("gate_max_accuracy_drop")
GATE_MIN_SHADOW_PREDICTIONS = CONFIG.integer("gate_min_shadow_predictions")
GATE_MIN_AGREEMENT = CONFIG.number("gate_min_agreement")
PAGE_SIZE = CONFIG.integer("page_size")
PREDICT_BATCH_MAX = CONFIG.integer("predict_batch_max")
PREDICT_BATCH_WAIT_S = CONFIG.number("predict_batch_wait_ms") / 1000
PREDICT_MAX_IN_FLIGHT = CONFIG.integer("predict_max_in_flight")
RATE_WINDOW_S = CONFIG.number("rate_window_s")
RATE_LIMITS = {name: CONFIG.integer(f"rate_limit_{name}") for name in ("predictions", "uploads", "scenarios")}
HISTORY_RETRY_S = CONFIG.number("history_retry_s")
TOKEN_CACHE_S = CONFIG.number("token_cache_s")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "gateway_site.accounts",
    "gateway_site.api",
    "gateway_site.web",
    "gateway_site.reports",
]
MIDDLEWARE = [
    "kit.metrics.MetricsMiddleware",
    "kit.requestlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "gateway_site.web.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "gateway_site.web.middleware.PeerErrorPageMiddleware",
    "axes.middleware.AxesMiddleware",
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
                "gateway_site.accounts.roles.roles_context",
            ]
        },
    }
]
STATIC_URL = "/static/"
# plotly's own bundled plotly.min.js, served locally (no CDN).
STATICFILES_DIRS = [("plotly", str(Path(plotly.__file__).parent / "package_data"))]
STATIC_ROOT = REPO_ROOT / "var" / "static" / "gateway"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder before collectstatic
# Login throttling: 5 failures for one username from one address lock that pair for 15 minutes.
AXES_FAILURE_LIMIT = CONFIG.integer("login_failure_limit")
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG.integer("login_lockout_minutes"))
AXES_LOCKOUT_CALLABLE = "gateway_site.accounts.lockout.locked_out"
# The front (nginx) passes the client's address in X-Real-IP; it is believed only from these addresses.
TRUSTED_PROXIES = [ipaddress.ip_network(part.strip()) for part in CONFIG.text("trusted_proxies").split(",") if part.strip()]
AXES_CLIENT_IP_CALLABLE = "gateway_site.accounts.lockout.client_ip"
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login"
# Behind TLS (`gateway.https: true`): secure cookies, HTTPS redirects and HSTS; `check --deploy` is clean then.
HTTPS = CONFIG.flag("https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
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
        "kit.validation.StrictJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,  # `?format=` chooses a download's file format, not a DRF renderer
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Digit Lab API",
    "DESCRIPTION": "Train, serve and improve a handwritten-digit classifier. Errors: {\"error\": {\"code\", \"message\", \"details\"}}.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api",
    # Schema-quality hints are not deployment problems: keep them out of `check --deploy`.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "ENUM_NAME_OVERRIDES": {"AliasName": ["production", "candidate"]},
    # /api/docs/: Swagger UI from drf-spectacular-sidecar's static files, its start script a separate file (the
    # pages' CSP allows no inline script), and no call to swagger.io's validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "deepLinking": True, "displayRequestDuration": True},
}
