"""compose.yml agrees with config/ (Docker cannot run on the test machine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yml").read_text())
SERVICES = COMPOSE["services"]
CONFIG = {name: yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()) for name in ("gateway", "collector", "storage", "ml")}
APP_SERVICES = ["storage", "collector", "ml", "ml_worker", "gateway"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_is_built_here_has_a_health_check_and_a_command(name):
    service = SERVICES[name]
    assert service["build"] == "." and (ROOT / "Dockerfile").exists()
    assert service["healthcheck"]["test"]
    assert service["command"]


def test_only_the_gateway_is_published_on_its_configured_port():
    published = {name: s["ports"] for name, s in SERVICES.items() if "ports" in s}
    assert published == {"gateway": [f"{CONFIG['gateway']['port']}:{CONFIG['gateway']['port']}"]}


@pytest.mark.parametrize("name", ["storage", "collector", "ml", "gateway"])
def test_each_service_listens_and_is_probed_on_its_configured_port(name):
    port = CONFIG[name]["port"]
    service = SERVICES[name]
    assert f"--bind 0.0.0.0:{port}" in service["command"]
    assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])


def test_peer_urls_point_at_the_configured_ports():
    env = SERVICES["gateway"]["environment"]
    for key, value in env.items():
        match = re.fullmatch(r"http://(\w+):(\d+)", str(value))
        if match:
            assert int(match.group(2)) == CONFIG[match.group(1)]["port"], key


def test_dependencies_wait_for_health():
    for name in APP_SERVICES:
        for dependency in SERVICES[name].get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}


def test_secrets_come_from_the_env_file_and_none_is_in_the_repo():
    example = (ROOT / ".env.example").read_text()
    for secret in ("SECRET_KEY", "SERVICE_TOKEN", "POSTGRES_PASSWORD"):
        assert re.search(rf"^{secret}=$", example, re.M), f"{secret} must be listed, empty, in .env.example"
    assert all(SERVICES[name]["env_file"] == ".env" for name in APP_SERVICES)
    text = (ROOT / "compose.yml").read_text()
    assert "SECRET_KEY:" not in text and "SERVICE_TOKEN:" not in text
