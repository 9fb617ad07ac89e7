"""A rehearsal of the platform on several hosts, on this one machine: two "hosts" on loopback addresses of their
own (127.0.0.2 and 127.0.0.3), each running a storage_svc, an ml_svc, a gateway and an ML worker on the same
ports, behind one load balancer (the front's nginx on 127.0.0.1) with both gateways upstream; one PostgreSQL; blobs
in an S3-compatible object store (moto's server on loopback); the collector and the webhook deliveries on the first
host only. Every service exports its spans over OTLP to a receiver in the test process (`Spans`)."""

from __future__ import annotations

import gzip
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.platform import Platform

HOSTS = ("127.0.0.2", "127.0.0.3")
REPLICATED = ("storage", "ml", "gateway")  # on every host; the collector on the first only


@dataclass
class Span:
    service: str
    host: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict


class Spans:
    """An OTLP/HTTP trace receiver on loopback that keeps every span it is sent, in memory (`decode=False`: only
counts the exports and their bytes, for the benchmarks)."""

    def __init__(self, decode: bool = True):
        self.received: list[Span] = []
        self.exports = self.bytes = 0
        self._lock = threading.Lock()
        spans = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the handler's protocol
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                spans.exports, spans.bytes = spans.exports + 1, spans.bytes + len(body)
                if decode:
                    if self.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    spans.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                                  for a in span.attributes}
                    found.append(Span(resource.get("service.name", ""), resource.get("host.name", ""),
                                      span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                                      attributes))
        with self._lock:
            self.received += found

    def of_request(self, request_id: str) -> list[Span]:
        """Every span of the trace whose server span carries `request_id`."""
        with self._lock:
            traces = {span.trace_id for span in self.received if span.attributes.get("digitlab.request_id") == request_id}
            return [span for span in self.received if span.trace_id in traces]

    def stop(self) -> None:
        self.server.shutdown()


def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


@dataclass
class Cluster(Platform):
    hosts: tuple[str, ...] = HOSTS
    threads: dict[str, int] = field(default_factory=lambda: {"gateway": 32})
    spans: Spans | None = None
    object_store: object = None
    bucket: str = field(default_factory=lambda: f"rehearsal-{secrets.token_hex(4)}")

    def url(self, service: str, host: str | None = None) -> str:
        """`service` on `host` (the first by default); "gateway" is the load balancer."""
        if service == "gateway" and host is None:
            return f"http://127.0.0.1:{self.ports['gateway']}"
        return f"http://{host or self.hosts[0]}:{self.ports['gateway_app' if service == 'gateway' else service]}"

    def start(self) -> None:
        self.spans = Spans()
        self.object_store = moto_server()
        super().start()

    def environment(self) -> dict[str, str]:
        """The platform's, but: blobs in a bucket of the object store, tracing on, the hosts allowed, the first host's
        peers (for manage()), ml_svc's default alias refresh (the promotion test counts on nothing faster)."""
        import boto3

        host, port = self.object_store.get_host_and_port()
        credentials = {"AWS_ACCESS_KEY_ID": "rehearsal-key", "AWS_SECRET_ACCESS_KEY": "rehearsal-secret"}
        boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                     aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=self.bucket)
        env = super().environment()
        for local_only in ("STORAGE_BLOB_DIR", "ML_ALIAS_REFRESH_S"):
            env.pop(local_only)
        every_host = ",".join(("localhost", "127.0.0.1", *self.hosts))
        env.update(
            credentials,
            STORAGE_BLOB_BACKEND="s3", STORAGE_S3_ENDPOINT_URL=f"http://{host}:{port}", STORAGE_S3_BUCKET=self.bucket,
            STORAGE_S3_REGION="us-east-1",
            STORAGE_ALLOWED_HOSTS=every_host, ML_ALLOWED_HOSTS=every_host, COLLECTOR_ALLOWED_HOSTS=every_host,
            GATEWAY_ALLOWED_HOSTS=every_host, GATEWAY_RATE_LIMIT_PREDICTIONS="0",
            OTEL_EXPORTER_OTLP_ENDPOINT=self.spans.endpoint, OTEL_BSP_SCHEDULE_DELAY="200",
            **self.host_env(self.hosts[0]),
        )
        return env

    def launch(self) -> None:
        self.start_replica("collector", self.hosts[0])
        for host in self.hosts:
            for name in REPLICATED:
                self.start_replica(name, host)
            self.start_host_worker(host)
        self.start_host_worker(self.hosts[0], "ml_webhooks")
        self.start_front([f"{host}:{self.ports['gateway_app']}" for host in self.hosts])
        for host in self.hosts:
            for name in REPLICATED:
                self.ready(f"{name}@{host}")
        self.ready(f"collector@{self.hosts[0]}")

    def host_env(self, host: str) -> dict[str, str]:
        """What a process on `host` is told: its own host's storage and ml_svc; the one collector."""
        collector = self.url("collector", self.hosts[0])
        storage = self.url("storage", host)
        return {"ML_STORAGE_URL": storage, "GATEWAY_STORAGE_URL": storage, "COLLECTOR_STORAGE_URL": storage,
                "GATEWAY_ML_URL": self.url("ml", host), "ML_COLLECTOR_URL": collector, "GATEWAY_COLLECTOR_URL": collector,
                "OTEL_RESOURCE_ATTRIBUTES": f"host.name={host}"}

    def _log_file(self, name: str, key: str) -> dict[str, str]:
        service = "ml" if name.startswith("ml") else name
        return {f"{service.upper()}_LOG_FILE": str(self.workdir / "logs" / f"{key}.jsonl")}

    def start_replica(self, name: str, host: str) -> None:
        key = f"{name}@{host}"
        self.start_service(name, host=host, key=key, env={**self.env, **self.host_env(host), **self._log_file(name, key)})

    def start_host_worker(self, host: str, name: str = "ml_worker") -> None:
        key = f"{name}@{host}"
        self.start_worker(name, key=key, env={**self.env, **self.host_env(host), **self._log_file(name, key)},
                          worker_id=f"worker-{host}" if name == "ml_worker" else None)

    def ready(self, key: str) -> None:
        """Until the process `key` (name@host) answers /ready on its host."""
        name, _, host = key.partition("@")
        self.wait_ready(name, key=key, url=self.url(name, host))

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.object_store is not None:
                self.object_store.stop()
            if self.spans is not None:
                self.spans.stop()
