"""Settings shared by the four Django projects; each settings module adds its own."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import dj_database_url

from kit.config import REPO_ROOT, ServiceConfig, secret
from kit.requestlog import logging_config


class Common(NamedTuple):
    """Settings every service reads from its configuration, in the order each settings module unpacks them:
    `SERVICE_NAME, DEBUG, ALLOWED_HOSTS, SECRET_KEY, SERVICE_TOKEN, LOGGING, DATA_UPLOAD_MAX_MEMORY_SIZE = ...`"""

    service_name: str
    debug: bool
    allowed_hosts: list[str]
    secret_key: str
    service_token: str
    logging: dict
    max_body_bytes: int


def common_settings(cfg: ServiceConfig) -> Common:
    """Secrets, hosts, logging and the body cap, from the service's configuration and environment."""
    debug = cfg.flag("debug")
    log_file: Path = cfg.path("log_file")
    to_stdout = cfg.flag("log_to_stdout")
    if not to_stdout:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    return Common(
        service_name=cfg.service,
        debug=debug,
        secret_key=secret("SECRET_KEY", debug=debug),
        service_token=secret("SERVICE_TOKEN", debug=debug),
        allowed_hosts=[h.strip() for h in cfg.text("allowed_hosts").split(",") if h.strip()],
        logging=logging_config(cfg.service, str(log_file), cfg.text("log_level"), to_stdout),
        max_body_bytes=cfg.integer("max_body_bytes"),
    )


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
