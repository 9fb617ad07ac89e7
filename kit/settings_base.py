"""Settings shared by the four Django projects; each settings module adds its own."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from kit.config import REPO_ROOT, ServiceConfig, secret
from kit.requestlog import logging_config


def common_settings(cfg: ServiceConfig) -> dict:
    """Settings every service has: secrets, hosts, logging, JSON error middleware."""
    debug = cfg.flag("debug")
    log_file: Path = cfg.path("log_file")
    to_stdout = cfg.flag("log_to_stdout")
    if not to_stdout:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    return {
        "SERVICE_NAME": cfg.service,
        "DEBUG": debug,
        "SECRET_KEY": secret("SECRET_KEY", debug=debug),
        "SERVICE_TOKEN": secret("SERVICE_TOKEN", debug=debug),
        "ALLOWED_HOSTS": [h.strip() for h in cfg.text("allowed_hosts").split(",") if h.strip()],
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "LANGUAGE_CODE": "en-us",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "LOGGING": logging_config(cfg.service, str(log_file), cfg.text("log_level"), to_stdout),
        "DATA_UPLOAD_MAX_MEMORY_SIZE": cfg.integer("max_body_bytes"),
    }


def database_settings(url: str) -> dict:
    """Parse a database URL; a relative SQLite path is taken from the repository root."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = REPO_ROOT / url.removeprefix("sqlite:///")
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    settings = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if settings["ENGINE"].endswith("sqlite3"):
        # Several processes share the file (the SQLite opt-in): WAL lets readers go on beside one writer; IMMEDIATE
        # transactions take the write lock up front, so two writers queue (busy timeout) instead of one failing
        # with "database is locked" when it tries to upgrade its read lock.
        settings["CONN_MAX_AGE"] = 0
        settings["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                               "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    return settings


INTERNAL_MIDDLEWARE = [
    "kit.metrics.MetricsMiddleware",
    "kit.requestlog.RequestLogMiddleware",
    "kit.service_auth.ServiceTokenMiddleware",
    "kit.errors.AppErrorMiddleware",
]

REST_FRAMEWORK_INTERNAL = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "kit.errors.drf_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["kit.validation.StrictJSONParser"],
}


def login_throttling(config) -> dict:
    """django-axes settings of a service with a login: `login_failure_limit` failures for one username from one
    address lock that pair for `login_lockout_minutes`; a good login resets the count."""
    from datetime import timedelta

    return {
        "AUTHENTICATION_BACKENDS": ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"],
        "AXES_FAILURE_LIMIT": config.integer("login_failure_limit"),
        "AXES_COOLOFF_TIME": timedelta(minutes=config.integer("login_lockout_minutes")),
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
        "AXES_RESET_ON_SUCCESS": True,
    }
