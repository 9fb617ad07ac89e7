"""Service configuration: `config/<service>.yaml`, overridden by environment variables.

Every key `k` of service `s` can be overridden by `S_K` (e.g. `ML_PORT=9003`).
Values are coerced to the type of the file's value; a bad value stops start-up with
a message that names the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("PLATFORM_CONFIG_DIR", REPO_ROOT / "config"))


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed."""


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected a boolean (true/false), got {raw!r}")
    if isinstance(default, int):
        try:
            if not raw.isascii():  # int() would take other scripts' digits
                raise ValueError
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            if not raw.isascii():
                raise ValueError
            return float(raw)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
    return raw


class ServiceConfig:
    """Typed read access to one service's configuration."""

    def __init__(self, service: str, values: dict[str, Any]):
        self.service = service
        self._values = values

    def get(self, key: str) -> Any:
        if key not in self._values:
            raise ConfigError(f"{self.service}.{key}: no such configuration key")
        return self._values[key]

    def integer(self, key: str) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.service}.{key}: expected an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.service}.{key}: expected a number, got {value!r}")
        return float(value)

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise ConfigError(f"{self.service}.{key}: expected text, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.service}.{key}: expected true or false, got {value!r}")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in options:
            raise ConfigError(f"{self.service}.{key}: expected one of {', '.join(options)}, got {value!r}")
        return value

    def path(self, key: str) -> Path:
        """A filesystem path; relative paths are taken from the repository root."""
        value = Path(str(self.get(key)))
        return value if value.is_absolute() else REPO_ROOT / value

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def load_config(service: str, *, aliases: dict[str, str] | None = None) -> ServiceConfig:
    """Read `config/<service>.yaml` and apply `<SERVICE>_<KEY>` environment overrides.

    `aliases` maps a key to one more environment variable that may set it
    (e.g. `database_url` -> `DATABASE_URL`); the prefixed name wins.
    """
    path = CONFIG_DIR / f"{service}.yaml"
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} is missing") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    prefix = service.upper() + "_"
    for key, default in values.items():
        names = [prefix + key.upper()]
        if aliases and key in aliases:
            names.append(aliases[key])
        for name in names:
            if name in os.environ:
                values[key] = _coerce(f"{service}.{key} (from ${name})", os.environ[name], default)
                break
    return ServiceConfig(service, values)


def secret(name: str, *, debug: bool) -> str:
    """A secret from the environment; outside debug mode it must be set and non-trivial."""
    value = os.environ.get(name, "")
    if not value:
        if debug:
            # Local development only: a fixed, clearly-unsafe value.
            return f"insecure-dev-{name.lower()}"
        raise ConfigError(f"${name} must be set (secrets are read only from the environment)")
    if not debug and len(value) < 16:
        raise ConfigError(f"${name} is too short: use at least 16 random characters")
    return value
