"""compose.yml and the Dockerfiles agree with config/ and the settings (Docker cannot run on the test machine).

`problems()` is the contract; the tests run it on the real files and on broken copies, so it is shown
to fail when a health check or a required variable goes missing.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from scripts.front import max_body

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {name: yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()) for name in ("gateway", "collector", "storage", "ml")}
APP_SERVICES = {"storage": "storage_svc", "collector": "collector_svc", "ml": "ml_svc", "ml_worker": "ml_svc",
                "ml_webhooks": "ml_svc", "gateway": "gateway_site"}
SECRETS = ("SECRET_KEY", "SERVICE_TOKEN")
# What each service's settings need from the environment in a container (the rest has defaults).
REQUIRED = {
    "storage": ["STORAGE_DATABASE_URL", "STORAGE_BLOB_DIR", "STORAGE_ALLOWED_HOSTS"],
    "collector": ["COLLECTOR_STORAGE_URL", "COLLECTOR_ALLOWED_HOSTS"],
    "ml": ["ML_DATABASE_URL", "ML_STORAGE_URL", "ML_COLLECTOR_URL", "ML_ALLOWED_HOSTS"],
    "ml_worker": ["ML_DATABASE_URL", "ML_STORAGE_URL", "ML_COLLECTOR_URL"],
    "ml_webhooks": ["ML_DATABASE_URL", "ML_STORAGE_URL"],
    "gateway": ["GATEWAY_DATABASE_URL", "GATEWAY_STORAGE_URL", "GATEWAY_ML_URL", "GATEWAY_COLLECTOR_URL", "GATEWAY_ALLOWED_HOSTS"],
}

def dockerfile_stages(text: str) -> dict[str, str]:
    """The root Dockerfile's stages by name, each from its FROM line to the next."""
    stages = {}
    for part in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        stages[re.match(r"FROM \S+ AS (\S+)", part).group(1)] = part
    return stages


STAGES = dockerfile_stages((ROOT / "Dockerfile").read_text())
PORT_OF = {"storage": "storage", "collector": "collector", "ml": "ml", "gateway": "gateway"}


def load() -> tuple[dict, str]:
    return yaml.safe_load((ROOT / "compose.yml").read_text()), (ROOT / ".env.example").read_text()


def problems(compose: dict, env_example: str) -> list[str]:
    found = []
    services = compose["services"]
    for name, folder in APP_SERVICES.items():
        service = services.get(name)
        if service is None:
            found.append(f"{name}: missing")
            continue
        build = service.get("build") or {}
        stage = STAGES.get(build.get("target", ""))
        if build.get("context") != "." or "dockerfile" in build or build.get("target") != folder or stage is None:
            found.append(f"{name}: must build the {folder} stage of the root Dockerfile")
        elif "USER app" not in stage or not STAGES["base"].startswith("FROM python:3.11-slim"):
            found.append(f"{name}: its image must be python:3.11-slim and run as a non-root user")
        if not (service.get("healthcheck") or {}).get("test"):
            found.append(f"{name}: no health check")
        env = service.get("environment") or {}
        for variable in REQUIRED[name]:
            if not env.get(variable):
                found.append(f"{name}: {variable} is not provided")
        if service.get("env_file") != ".env":
            found.append(f"{name}: secrets must come from env_file .env")
        for dependency in (service.get("depends_on") or {}).values():
            if dependency != {"condition": "service_healthy"}:
                found.append(f"{name}: depends_on must wait for service_healthy")
    for secret in SECRETS + ("POSTGRES_PASSWORD",):
        if not re.search(rf"^{secret}=$", env_example, re.M):
            found.append(f".env.example: {secret} must be listed, empty")
    published = {name for name, s in services.items() if s.get("ports") and not s.get("profiles")}
    if published != {"front"}:
        found.append(f"only the front may publish a port by default, not {sorted(published - {'front'})}")
    front = services.get("front") or {}
    mounts = " ".join(front.get("volumes") or [])
    upstream = (front.get("environment") or {}).get("GATEWAY_UPSTREAM")
    if "config/nginx/digitlab.conf.template:/etc/nginx/templates/" not in mounts:
        found.append("front: must serve config/nginx/digitlab.conf.template, as the local run does")
    if upstream != f"gateway:{CONFIG['gateway']['port']}" or front.get("depends_on") != {"gateway": {"condition": "service_healthy"}}:
        found.append("front: must pass to the gateway on its configured port, once it is healthy")
    if (front.get("environment") or {}).get("FRONT_MAX_BODY") != max_body():
        found.append(f"front: FRONT_MAX_BODY must be {max_body()}, the gateway's cap and room for multipart")
    if (front.get("environment") or {}).get("FRONT_UPLOAD_MAX_BODY") != max_body("upload_max_bytes"):
        found.append(f"front: FRONT_UPLOAD_MAX_BODY must be {max_body('upload_max_bytes')}, the gateway's upload cap "
                     "and room for multipart")
    edge = (compose.get("networks") or {}).get("edge") or {}
    subnets = [c.get("subnet") for c in (edge.get("ipam") or {}).get("config") or []]
    gateway_env = (services.get("gateway") or {}).get("environment") or {}
    on_edge = {name for name, s in services.items() if "edge" in (s.get("networks") or [])}
    front_networks = front.get("networks") or {}
    front_address = ((front_networks.get("edge") or {}).get("ipv4_address") if isinstance(front_networks, dict) else None)
    in_subnet = front_address is not None and len(subnets) == 1 and subnets[0] is not None \
        and ipaddress.ip_address(front_address) in ipaddress.ip_network(subnets[0])
    if (on_edge != {"front", "gateway"} or list(front_networks) != ["edge"] or not in_subnet
            or gateway_env.get("GATEWAY_TRUSTED_PROXIES") != front_address):
        found.append("front: the gateway may trust X-Real-IP only from the front's own address, on a network of the "
                     "front and the gateway alone")
    for name, key in PORT_OF.items():
        port = CONFIG[key]["port"]
        dockerfile = STAGES.get(APP_SERVICES[name], "")
        probe = " ".join((services[name].get("healthcheck") or {}).get("test") or [])
        if f"--bind=0.0.0.0:{port}" not in dockerfile or f"127.0.0.1:{port}/" not in probe:
            found.append(f"{name}: must listen and be probed on its configured port {port}")
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            match = re.fullmatch(r"http://(\w+):(\d+)", str(value))
            if match and int(match.group(2)) != CONFIG[PORT_OF[match.group(1)]]["port"]:
                found.append(f"{name}: {variable} points at the wrong port")
    text = (ROOT / "compose.yml").read_text()
    for secret in SECRETS:
        if re.search(rf"^\s*{secret}:", text, re.M):
            found.append(f"compose.yml must not set {secret}")
    return found


def test_the_deployment_files_have_no_problems():
    assert problems(*load()) == []


def test_the_gateway_image_has_what_weasyprint_needs_to_render_reports():
    dockerfile = STAGES["gateway_site"]
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"):
        assert package in dockerfile, f"the gateway renders report PDFs: its image needs {package}"


def test_building_a_service_from_another_stage_is_caught():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["build"] = {"context": ".", "target": "ml_svc"}
    assert "gateway: must build the gateway_site stage of the root Dockerfile" in problems(broken, env)


def test_the_services_with_a_database_migrate_at_start():
    for stage in ("storage_svc", "ml_svc", "gateway_site"):
        assert "MIGRATE=true" in STAGES[stage], stage
    assert "MIGRATE" not in STAGES["collector_svc"]
    # serve.py migrates when MIGRATE=true (tests/deploy/test_serving.py)


@pytest.mark.parametrize("service", ["storage", "ml_worker", "gateway"])
def test_removing_a_health_check_is_caught(service):
    compose, env = load()
    broken = copy.deepcopy(compose)
    del broken["services"][service]["healthcheck"]
    assert f"{service}: no health check" in problems(broken, env)


@pytest.mark.parametrize("service, variable", [("storage", "STORAGE_DATABASE_URL"), ("gateway", "GATEWAY_ML_URL"),
                                               ("ml_worker", "ML_DATABASE_URL")])
def test_removing_a_required_variable_is_caught(service, variable):
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"][service]["environment"] = {k: v for k, v in broken["services"][service]["environment"].items() if k != variable}
    assert f"{service}: {variable} is not provided" in problems(broken, env)


def test_removing_a_secret_from_the_env_example_is_caught():
    compose, env = load()
    assert ".env.example: SERVICE_TOKEN must be listed, empty" in problems(compose, env.replace("SERVICE_TOKEN=\n", ""))


def test_publishing_an_internal_port_is_caught():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["storage"]["ports"] = ["8002:8002"]
    assert any("only the front" in p for p in problems(broken, env))


def test_trusting_x_real_ip_from_any_address_is_caught():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"] = "0.0.0.0/0"
    assert any("X-Real-IP" in p for p in problems(broken, env))


def test_trusting_the_whole_edge_network_is_caught():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"] = "172.30.80.0/24"
    assert any("X-Real-IP" in p for p in problems(broken, env))


def test_publishing_the_gateway_past_the_front_is_caught():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["ports"] = ["8000:8000"]
    assert any("only the front" in p for p in problems(broken, env))


def test_the_front_template_has_a_value_for_each_placeholder_compose_and_the_local_run_give():
    template = (ROOT / "config" / "nginx" / "digitlab.conf.template").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", template))
    compose, _ = load()
    assert placeholders == set(compose["services"]["front"]["environment"]) == {"FRONT_PORT", "GATEWAY_UPSTREAM", "FRONT_MAX_BODY",
                                                                                     "FRONT_UPLOAD_MAX_BODY"}


def test_the_monitoring_profile_provisions_prometheus_and_a_grafana_dashboard():
    compose, _ = load()
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{name}:{CONFIG[name]['port']}" for name in ("storage", "collector", "ml", "gateway"))
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "digit-lab.json").read_text())
    expressions = " ".join(p["targets"][0]["expr"] for p in dashboard["panels"])
    for family in ("http_requests_total", "http_request_duration_seconds_bucket", "predictions_total", "runs_total",
                   "ml_queue_depth", "storage_run_heartbeat_age_seconds"):
        assert family in expressions


def test_a_ci_workflow_runs_the_same_make_test():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)
