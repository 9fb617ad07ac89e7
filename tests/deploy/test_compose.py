"""compose.yml and the Dockerfiles agree with config/ and the settings (Docker cannot run on the test machine).

`problems()` (compose.yml and .env.example) and `template_problems()` (the front's nginx template) are the
contract; the tests run them on the real files and on broken copies, so each check is shown to fail when what it
guards (a health check, a required variable, a replica count, MinIO, Jaeger, a timeout) goes missing.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from scripts.front import max_body, upstream_servers

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {name: yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()) for name in ("gateway", "collector", "storage", "ml")}
APP_SERVICES = {"storage": "storage_svc", "collector": "collector_svc", "ml": "ml_svc", "ml_worker": "ml_svc",
                "ml_webhooks": "ml_svc", "gateway": "gateway_site"}
SECRETS = ("SECRET_KEY", "SERVICE_TOKEN")
# What each service's settings need from the environment in a container (the rest has defaults). storage's blobs are
# in MinIO (blob_backend s3): blob_dir is read by the local store alone, so no folder is needed.
REQUIRED = {
    "storage": ["STORAGE_DATABASE_URL", "STORAGE_BLOB_BACKEND", "STORAGE_S3_ENDPOINT_URL", "STORAGE_S3_BUCKET",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STORAGE_ALLOWED_HOSTS"],
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
# Ports of the services that are not ours: MinIO's S3 API, Jaeger's OTLP/HTTP receiver.
OTHER_PORTS = {"minio": 9000, "jaeger": 4318}
# Replicas behind a name each: at least this many by default (nginx, or Docker's DNS, spreads the requests).
REPLICAS = {"gateway": 2, "ml": 2, "storage": 2}
WORKER_REPLICAS = re.compile(r"\$\{ML_WORKER_REPLICAS:-([1-9]\d*)\}")
BUCKET_JOB = "minio_bucket"
MINIO_RELEASE = r"RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ"
# The nginx timeouts that keep a slow or silent client (or gateway) from holding a connection for ever.
FRONT_TIMEOUTS = ("client_header_timeout", "client_body_timeout", "proxy_connect_timeout", "proxy_read_timeout")
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")  # a client's own: dropped by the front
OTEL = "OTEL_EXPORTER_OTLP_ENDPOINT"


def load() -> tuple[dict, str]:
    return yaml.safe_load((ROOT / "compose.yml").read_text()), (ROOT / ".env.example").read_text()


def load_template() -> str:
    return (ROOT / "config" / "nginx" / "digitlab.conf.template").read_text()


def from_env_file(value, variable: str) -> bool:
    """`value` is `${variable}` (with or without a `:?message`), read from .env: no literal secret in compose.yml."""
    return re.fullmatch(rf"\$\{{{variable}(:\?[^}}]*)?\}}", str(value)) is not None


def replicas(service: dict) -> int | None:
    """`deploy.replicas` as a number: the default of a `${ML_WORKER_REPLICAS:-N}`; None if absent or not a count."""
    value = (service.get("deploy") or {}).get("replicas")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = WORKER_REPLICAS.fullmatch(str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def pinned(service: dict, repository: str, tag: str = r"v?\d+\.\d+\.\d+") -> bool:
    """The image is `repository` at a named release (`tag`, a pattern), never `latest` or untagged."""
    image = str(service.get("image") or "")
    return image.startswith(f"{repository}:") and re.fullmatch(tag, image.removeprefix(f"{repository}:")) is not None


def words(value) -> str:
    """A command or entrypoint as one line, whether compose.yml gives it as a list or a string."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value or "")


def minio_problems(compose: dict, env_example: str) -> list[str]:
    """MinIO holds the blobs, a one-shot job makes the bucket, and storage uses it with credentials from .env."""
    found = []
    services = compose["services"]
    minio = services.get("minio")
    if minio is None:
        found.append("minio: missing (storage's replicas keep their blobs in it)")
    else:
        env = minio.get("environment") or {}
        if not pinned(minio, "minio/minio", MINIO_RELEASE):
            found.append("minio: the image must be minio/minio at a pinned RELEASE tag")
        if words(minio.get("command")) != "server /data --console-address :9001":
            found.append("minio: must run `server /data --console-address :9001`")
        for variable in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
            if not re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", str(env.get(variable))):
                found.append(f"minio: {variable} must come from .env as ${{{variable}:?...}}")
        named = set(compose.get("volumes") or {})
        mounts = [str(v).split(":") for v in minio.get("volumes") or []]
        if not any(mount[0] in named and mount[1:2] == ["/data"] for mount in mounts):
            found.append("minio: /data must be a named volume")
        if "mc ready local" not in words((minio.get("healthcheck") or {}).get("test")):
            found.append("minio: no health check (`mc ready local`)")
        if minio.get("ports"):
            found.append("minio: must not publish a port (storage reaches it inside the network)")
    storage_env = (services.get("storage") or {}).get("environment") or {}
    bucket = storage_env.get("STORAGE_S3_BUCKET")
    job = services.get(BUCKET_JOB)
    if job is None:
        found.append(f"{BUCKET_JOB}: missing (nothing makes storage's bucket)")
    else:
        script = f"{words(job.get('entrypoint'))} {words(job.get('command'))}"
        if not pinned(job, "minio/mc", MINIO_RELEASE):
            found.append(f"{BUCKET_JOB}: the image must be minio/mc at a pinned RELEASE tag")
        if not re.search(rf"mc mb --ignore-existing \S+/{re.escape(str(bucket))}(\s|$)", script):
            found.append(f"{BUCKET_JOB}: must make storage's bucket {bucket} with `mc mb --ignore-existing`")
        if job.get("depends_on") != {"minio": {"condition": "service_healthy"}}:
            found.append(f"{BUCKET_JOB}: must wait for minio to be healthy")
        if job.get("restart") not in (None, "no", "on-failure"):
            found.append(f"{BUCKET_JOB}: a one-shot job must not be restarted once it is done")
    storage = services.get("storage") or {}
    if storage_env.get("STORAGE_BLOB_BACKEND") != "s3":
        found.append("storage: STORAGE_BLOB_BACKEND must be s3 (its replicas share MinIO's bucket, not a folder each)")
    if storage_env.get("STORAGE_S3_ENDPOINT_URL") != f"http://minio:{OTHER_PORTS['minio']}":
        found.append(f"storage: STORAGE_S3_ENDPOINT_URL must be http://minio:{OTHER_PORTS['minio']}")
    for variable, source in (("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"),
                             ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD")):
        if not from_env_file(storage_env.get(variable), source):
            found.append(f"storage: {variable} must be ${{{source}}} from .env, never a literal")
    if (storage.get("depends_on") or {}).get(BUCKET_JOB) != {"condition": "service_completed_successfully"}:
        found.append(f"storage: must wait for {BUCKET_JOB} to complete successfully")
    for variable in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        if not re.search(rf"^{variable}=$", env_example, re.M):
            found.append(f".env.example: {variable} must be listed, empty")
    return found


def replica_problems(services: dict) -> list[str]:
    """gateway, ml and storage run as replicas, ml_worker as ML_WORKER_REPLICAS; each health-checked and able to be
    started more than once (no fixed name or address)."""
    found = []
    for name, least in REPLICAS.items():
        count = ((services.get(name) or {}).get("deploy") or {}).get("replicas")
        if not isinstance(count, int) or isinstance(count, bool) or count < least:
            found.append(f"{name}: must run at least {least} replicas (deploy.replicas)")
    worker = (services.get("ml_worker") or {}).get("deploy") or {}
    if not WORKER_REPLICAS.fullmatch(str(worker.get("replicas"))):
        found.append("ml_worker: deploy.replicas must be ${ML_WORKER_REPLICAS:-N}")
    for name, service in services.items():
        if replicas(service) is None:
            continue
        if not (service.get("healthcheck") or {}).get("test"):
            found.append(f"{name}: a replicated service needs a health check (what depends on it waits for every replica to answer)")
        networks = service.get("networks") or {}
        fixed = isinstance(networks, dict) and any((n or {}).get("ipv4_address") for n in networks.values())
        if service.get("container_name") or fixed:
            found.append(f"{name}: a replicated service can have no container_name or fixed address")
    return found


def tracing_problems(services: dict, env_example: str) -> list[str]:
    """Jaeger in the monitoring profile takes OTLP/HTTP; every app service is given OTEL_EXPORTER_OTLP_ENDPOINT."""
    found = []
    jaeger = services.get("jaeger")
    if jaeger is None:
        found.append("jaeger: missing from the monitoring profile")
    else:
        env = jaeger.get("environment") or {}
        ports = [str(p) for p in jaeger.get("ports") or []]
        if jaeger.get("profiles") != ["monitoring"]:
            found.append("jaeger: must run in the monitoring profile only")
        if not pinned(jaeger, "jaegertracing/all-in-one"):
            found.append("jaeger: the image must be jaegertracing/all-in-one at a pinned version")
        if str(env.get("COLLECTOR_OTLP_ENABLED")).lower() != "true":
            found.append("jaeger: COLLECTOR_OTLP_ENABLED must be true (the services send OTLP/HTTP)")
        if [p.rsplit(":", 1)[-1] for p in ports] != ["16686"]:
            found.append("jaeger: must publish its UI (16686) alone; OTLP stays inside the network")
    for name in APP_SERVICES:
        if ((services.get(name) or {}).get("environment") or {}).get(OTEL) != f"${{{OTEL}:-}}":
            found.append(f"{name}: {OTEL} must be passed as ${{{OTEL}:-}} (empty: tracing off)")
    if not re.search(rf"^{OTEL}=$", env_example, re.M):
        found.append(f".env.example: {OTEL} must be listed, empty")
    if f"http://jaeger:{OTHER_PORTS['jaeger']}" not in env_example:
        found.append(f".env.example: must say that {OTEL}=http://jaeger:{OTHER_PORTS['jaeger']} turns tracing on")
    return found


def template_problems(template: str) -> list[str]:
    """The front's nginx template: an upstream of every gateway replica, and the timeouts that bound a slow peer."""
    found = []
    if not re.search(r"upstream gateway \{\s*\$\{GATEWAY_SERVERS\}", template):
        found.append("front template: `upstream gateway` must list ${GATEWAY_SERVERS}, a server per gateway replica")
    for directive in FRONT_TIMEOUTS:
        if not re.search(rf"^\s*{directive}\s+\d+s;", template, re.M):
            found.append(f"front template: {directive} is missing (a slow or silent peer would hold a connection)")
    for header in TRACE_HEADERS:
        if not re.search(rf'^\s*proxy_set_header {header} "";', template, re.M):
            found.append(f"front template: a client's {header} header must be dropped (traces start at the front)")
    return found


def problems(compose: dict, env_example: str) -> list[str]:
    """What is wrong with compose.yml and .env.example, one line each (nothing: they are right)."""
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
        for on, dependency in (service.get("depends_on") or {}).items():
            done = on == BUCKET_JOB and dependency == {"condition": "service_completed_successfully"}
            if dependency != {"condition": "service_healthy"} and not done:
                found.append(f"{name}: depends_on must wait for service_healthy")
    for secret in SECRETS + ("POSTGRES_PASSWORD",):
        if not re.search(rf"^{secret}=$", env_example, re.M):
            found.append(f".env.example: {secret} must be listed, empty")
    published = {name for name, s in services.items() if s.get("ports") and not s.get("profiles")}
    if published != {"front"}:
        found.append(f"only the front may publish a port by default, not {sorted(published - {'front'})}")
    front = services.get("front") or {}
    mounts = " ".join(front.get("volumes") or [])
    upstream = (front.get("environment") or {}).get("GATEWAY_SERVERS")
    if "config/nginx/digitlab.conf.template:/etc/nginx/templates/" not in mounts:
        found.append("front: must serve config/nginx/digitlab.conf.template, as the local run does")
    if (upstream != upstream_servers([f"gateway:{CONFIG['gateway']['port']}"])
            or front.get("depends_on") != {"gateway": {"condition": "service_healthy"}}):
        found.append("front: GATEWAY_SERVERS must name the gateway service on its configured port (every replica), "
                     "once it is healthy")
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
    ranges = [c.get("ip_range") for c in (edge.get("ipam") or {}).get("config") or []]
    if not (in_subnet and ranges[0] and ipaddress.ip_network(ranges[0]).subnet_of(ipaddress.ip_network(subnets[0]))
            and ipaddress.ip_address(front_address) not in ipaddress.ip_network(ranges[0])):
        found.append("edge: the gateway replicas must take their addresses from an ip_range that leaves out the front's")
    for name, key in PORT_OF.items():
        port = CONFIG[key]["port"]
        dockerfile = STAGES.get(APP_SERVICES[name], "")
        probe = " ".join((services[name].get("healthcheck") or {}).get("test") or [])
        if f"--bind=0.0.0.0:{port}" not in dockerfile or f"127.0.0.1:{port}/" not in probe:
            found.append(f"{name}: must listen and be probed on its configured port {port}")
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            match = re.fullmatch(r"http://(\w+):(\d+)", str(value))
            if not match:
                continue
            host, port = match.group(1), int(match.group(2))
            expected = CONFIG[PORT_OF[host]]["port"] if host in PORT_OF else OTHER_PORTS.get(host)
            if host not in services or port != expected:
                found.append(f"{name}: {variable} points at the wrong service or port")
    text = (ROOT / "compose.yml").read_text()
    for secret in SECRETS:
        if re.search(rf"^\s*{secret}:", text, re.M):
            found.append(f"compose.yml must not set {secret}")
    return found + minio_problems(compose, env_example) + replica_problems(services) + tracing_problems(services, env_example)


def test_the_deployment_files_have_no_problems():
    assert problems(*load()) == []
    assert template_problems(load_template()) == []


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
    assert placeholders == set(compose["services"]["front"]["environment"]) == {"FRONT_PORT", "GATEWAY_SERVERS", "FRONT_MAX_BODY",
                                                                                     "FRONT_UPLOAD_MAX_BODY"}


def test_the_monitoring_profile_provisions_prometheus_and_a_grafana_dashboard():
    compose, _ = load()
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    # each replica, found by the service's name in DNS (a fixed target would scrape one replica of two)
    targets = [(names, entry["port"]) for entry in scrape["scrape_configs"][0]["dns_sd_configs"]
               for names in entry["names"] if entry["type"] == "A"]
    assert sorted(targets) == sorted((name, CONFIG[name]["port"]) for name in ("storage", "collector", "ml", "gateway"))
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


@pytest.mark.parametrize("directive", FRONT_TIMEOUTS)
def test_removing_a_front_timeout_is_caught(directive):
    template = "\n".join(line for line in load_template().splitlines() if not line.strip().startswith(directive))
    problem = f"front template: {directive} is missing (a slow or silent peer would hold a connection)"
    assert problem in template_problems(template)


@pytest.mark.parametrize("header", TRACE_HEADERS)
def test_passing_a_clients_trace_header_on_is_caught(header):
    template = "\n".join(line for line in load_template().splitlines()
                         if not line.strip().startswith(f"proxy_set_header {header} "))
    assert f"front template: a client's {header} header must be dropped (traces start at the front)" in \
        template_problems(template)


def test_a_front_template_with_one_fixed_gateway_is_caught():
    template = load_template().replace("${GATEWAY_SERVERS}", "server gateway:8000;")
    assert any("GATEWAY_SERVERS" in p for p in template_problems(template))


def drop(*path):
    """A change to a compose file: delete services[path[0]][path[1]]…"""
    def change(compose):
        node = compose["services"]
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


def put(*path, value):
    """A change to a compose file: set services[path[0]][path[1]]… to `value`."""
    def change(compose):
        node = compose["services"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


BREAKAGES = [
    pytest.param(drop("minio"), "minio: missing (storage's replicas keep their blobs in it)", id="no-minio"),
    pytest.param(put("minio", "image", value="minio/minio:latest"),
                 "minio: the image must be minio/minio at a pinned RELEASE tag", id="minio-latest"),
    pytest.param(drop("minio", "healthcheck"), "minio: no health check (`mc ready local`)", id="minio-health-check"),
    pytest.param(put("minio", "environment", "MINIO_ROOT_PASSWORD", value="minioadmin"),
                 "minio: MINIO_ROOT_PASSWORD must come from .env as ${MINIO_ROOT_PASSWORD:?...}",
                 id="minio-literal-password"),
    pytest.param(put("minio", "volumes", value=["./minio-data:/data"]), "minio: /data must be a named volume",
                 id="minio-bind-mount"),
    pytest.param(put("minio", "ports", value=["9000:9000"]),
                 "minio: must not publish a port (storage reaches it inside the network)", id="minio-published"),
    pytest.param(drop(BUCKET_JOB), f"{BUCKET_JOB}: missing (nothing makes storage's bucket)", id="no-bucket-job"),
    pytest.param(put(BUCKET_JOB, "command", value=["mc mb local/digitlab-blobs"]),
                 f"{BUCKET_JOB}: must make storage's bucket digitlab-blobs with `mc mb --ignore-existing`",
                 id="bucket-not-idempotent"),
    pytest.param(put("storage", "environment", "STORAGE_S3_BUCKET", value="another-bucket"),
                 f"{BUCKET_JOB}: must make storage's bucket another-bucket with `mc mb --ignore-existing`",
                 id="bucket-of-another-name"),
    pytest.param(drop(BUCKET_JOB, "depends_on"), f"{BUCKET_JOB}: must wait for minio to be healthy",
                 id="bucket-job-before-minio"),
    pytest.param(put(BUCKET_JOB, "restart", value="unless-stopped"),
                 f"{BUCKET_JOB}: a one-shot job must not be restarted once it is done", id="bucket-job-restarted"),
    pytest.param(drop("storage", "environment", "STORAGE_BLOB_BACKEND"),
                 "storage: STORAGE_BLOB_BACKEND must be s3 (its replicas share MinIO's bucket, not a folder each)",
                 id="storage-no-backend"),
    pytest.param(put("storage", "environment", "STORAGE_BLOB_BACKEND", value="local"),
                 "storage: STORAGE_BLOB_BACKEND must be s3 (its replicas share MinIO's bucket, not a folder each)",
                 id="storage-local-blobs"),
    pytest.param(put("storage", "environment", "STORAGE_S3_ENDPOINT_URL", value="http://localhost:9000"),
                 "storage: STORAGE_S3_ENDPOINT_URL must be http://minio:9000", id="storage-wrong-endpoint"),
    pytest.param(put("storage", "environment", "AWS_SECRET_ACCESS_KEY", value="minioadmin"),
                 "storage: AWS_SECRET_ACCESS_KEY must be ${MINIO_ROOT_PASSWORD} from .env, never a literal",
                 id="storage-literal-secret"),
    pytest.param(drop("storage", "depends_on", BUCKET_JOB),
                 f"storage: must wait for {BUCKET_JOB} to complete successfully", id="storage-before-bucket"),
    pytest.param(put("gateway", "depends_on", "storage", value={"condition": "service_completed_successfully"}),
                 "gateway: depends_on must wait for service_healthy", id="completion-is-for-the-bucket-job-only"),
    *[pytest.param(drop(name, "deploy"), f"{name}: must run at least 2 replicas (deploy.replicas)",
                   id=f"{name}-no-replicas") for name in REPLICAS],
    pytest.param(put("gateway", "deploy", "replicas", value=1),
                 "gateway: must run at least 2 replicas (deploy.replicas)",
                 id="gateway-one-replica"),
    pytest.param(drop("ml_worker", "deploy"), "ml_worker: deploy.replicas must be ${ML_WORKER_REPLICAS:-N}",
                 id="ml_worker-no-replicas"),
    *[pytest.param(drop(name, "healthcheck"),
                   f"{name}: a replicated service needs a health check (what depends on it waits for every replica to answer)",
                   id=f"{name}-replica-health-check") for name in (*REPLICAS, "ml_worker")],
    pytest.param(put("gateway", "container_name", value="gateway"),
                 "gateway: a replicated service can have no container_name or fixed address",
                 id="gateway-container-name"),
    pytest.param(put("gateway", "ports", value=["8000:8000"]),
                 "only the front may publish a port by default, not ['gateway']", id="gateway-published"),
    pytest.param(put("front", "environment", "GATEWAY_SERVERS", value="server 172.30.80.20:8000;"),
                 "front: GATEWAY_SERVERS must name the gateway service on its configured port (every replica), once it "
                 "is healthy", id="front-one-fixed-gateway"),
    pytest.param(lambda compose: compose["networks"]["edge"]["ipam"]["config"][0].pop("ip_range"),
                 "edge: the gateway replicas must take their addresses from an ip_range that leaves out the front's",
                 id="edge-no-ip-range"),
    pytest.param(put("front", "networks", "edge", "ipv4_address", value="172.30.80.200"),
                 "edge: the gateway replicas must take their addresses from an ip_range that leaves out the front's",
                 id="front-address-in-the-replicas-range"),
    pytest.param(drop("jaeger"), "jaeger: missing from the monitoring profile", id="no-jaeger"),
    pytest.param(drop("jaeger", "profiles"), "jaeger: must run in the monitoring profile only", id="jaeger-by-default"),
    pytest.param(put("jaeger", "image", value="jaegertracing/all-in-one:latest"),
                 "jaeger: the image must be jaegertracing/all-in-one at a pinned version", id="jaeger-latest"),
    pytest.param(drop("jaeger", "environment", "COLLECTOR_OTLP_ENABLED"),
                 "jaeger: COLLECTOR_OTLP_ENABLED must be true (the services send OTLP/HTTP)", id="jaeger-no-otlp"),
    pytest.param(put("jaeger", "ports", value=["16686:16686", "4318:4318"]),
                 "jaeger: must publish its UI (16686) alone; OTLP stays inside the network",
                 id="jaeger-otlp-published"),
    *[pytest.param(drop(name, "environment", OTEL),
                   f"{name}: {OTEL} must be passed as ${{{OTEL}:-}} (empty: tracing off)", id=f"{name}-no-otel")
      for name in ("storage", "gateway", "ml_worker")],
    pytest.param(put("ml", "environment", OTEL, value="http://jaeger:4318"),
                 f"ml: {OTEL} must be passed as ${{{OTEL}:-}} (empty: tracing off)", id="ml-otel-always-on"),
]


@pytest.mark.parametrize("change, problem", BREAKAGES)
def test_each_part_of_the_deployment_is_checked(change, problem):
    compose, env = load()
    broken = copy.deepcopy(compose)
    change(broken)
    assert problem in problems(broken, env)


@pytest.mark.parametrize("line, problem", [
    ("MINIO_ROOT_USER=\n", ".env.example: MINIO_ROOT_USER must be listed, empty"),
    ("MINIO_ROOT_PASSWORD=\n", ".env.example: MINIO_ROOT_PASSWORD must be listed, empty"),
    (f"{OTEL}=\n", f".env.example: {OTEL} must be listed, empty"),
    ("http://jaeger:4318", f".env.example: must say that {OTEL}=http://jaeger:4318 turns tracing on"),
])
def test_removing_a_line_from_the_env_example_is_caught(line, problem):
    compose, env = load()
    assert line in env
    assert problem in problems(compose, env.replace(line, ""))


def test_removing_the_tracing_variable_from_the_shared_environment_is_caught():
    """Every app service takes it from the x-service anchor: one line out, and all six lose it."""
    text = (ROOT / "compose.yml").read_text()
    line = f"    {OTEL}: ${{{OTEL}:-}}\n"
    assert text.count(line) == 1
    found = problems(yaml.safe_load(text.replace(line, "")), load()[1])
    for name in APP_SERVICES:
        assert f"{name}: {OTEL} must be passed as ${{{OTEL}:-}} (empty: tracing off)" in found


def test_the_services_reach_minio_and_jaeger_on_their_own_ports():
    compose, env = load()
    broken = copy.deepcopy(compose)
    broken["services"]["storage"]["environment"]["STORAGE_S3_ENDPOINT_URL"] = "http://minio:9001"
    assert "storage: STORAGE_S3_ENDPOINT_URL points at the wrong service or port" in problems(broken, env)
