"""Load benchmarks of the prediction path, driven by wrk (Debian's `wrk`) on loopback.

    .venv/bin/python bench/load_predict.py direct     # ml_svc POST /predict with the service token
    .venv/bin/python bench/load_predict.py gateway    # gateway POST /api/predictions, recorded in history
    .venv/bin/python bench/load_predict.py overload   # the gateway at 3x its measured capacity
    .venv/bin/python bench/load_predict.py compare    # peers, ml_svc direct and the gateway, one table of ratios
    .venv/bin/python bench/load_predict.py shadow     # the gateway with shadow scoring off and on, in turns
    .venv/bin/python bench/load_predict.py explain    # an explanation's latency beside a prediction's

`compare` also starts the servers a user would pick instead (bench/peers/: FastAPI + uvicorn and Flask + gunicorn,
2 workers each, installed with `.venv/bin/pip install -r bench/requirements.txt`), serving the same ONNX model with the
same preprocessing and the same request body, and takes turns between them for --rounds rounds.

Each starts the platform (fresh PostgreSQL databases, the services as `make run` starts them; with
--default-run through `make run`'s own entry point, scripts/run_local.py, its Procfile under honcho and its
first model), trains a first model, warms up, drives the load for a fixed time and prints throughput,
p50/p95/p99 latency, answers by status, errors, and CPU and memory per service. The gateway
benchmark then checks every acknowledged prediction (each 201's id) against the history table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from scripts.serve import server_of  # noqa: E402
from tests.e2e.platform import DefaultRun, Platform, free_port  # noqa: E402

MNIST_TEST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# As `make run` starts them (Procfile).
SERVING_WORKERS = {"storage": 2, "ml": 2, "gateway": 2}

LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; ids = {}; sent = 0 end
function request() sent = sent + 1; return wrk.format() end
%(delay)s
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    local id = string.match(body, '^{"id":%%s*(%%d+)')
    if id then ids[#ids + 1] = id end
  end
end
function done(summary, latency, requests)
  local counts, sent_all, idfile = {}, 0, io.open("%(ids_path)s", "w")
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do counts[tostring(k)] = (counts[tostring(k)] or 0) + v end
    sent_all = sent_all + t:get("sent")
    for _, id in ipairs(t:get("ids")) do idfile:write(id, "\n") end
  end
  idfile:close()
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%%s": %%d', k, v) end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "sent": %%d, "duration_us": %%d, "statuses": {%%s}, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}, ' ..
    '"p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, sent_all, summary.duration, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def a_digit() -> list[list[int]]:
    """One real handwritten digit from the official test set, as 28x28 pixels."""
    data = gzip.decompress((MNIST_TEST / "t10k-images-idx3-ubyte.gz").read_bytes())
    return np.frombuffer(data, dtype=np.uint8, offset=16, count=784).reshape(28, 28).astype(int).tolist()


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def cpu_and_rss(pids: list[int]) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes, summed over the processes."""
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / TICK
        rss += int(fields[21]) * PAGE
    return cpu, rss


class Usage:
    """CPU (cores busy) and peak memory of each service while the load runs."""

    def __init__(self, platform: Platform):
        self.trees = {name: process_tree(p.pid) for name, p in platform.processes.items()}
        with psycopg2.connect(platform.database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            self.trees["postgres"] = [pid for (pid,) in cursor.fetchall()]  # the storage service's connections
        self.peak = dict.fromkeys(self.trees, 0)
        self._stop = threading.Event()

    def __enter__(self):
        self.started = time.monotonic()
        self.cpu0 = {name: cpu_and_rss(pids)[0] for name, pids in self.trees.items()}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.25):
            for name, pids in self.trees.items():
                self.peak[name] = max(self.peak[name], cpu_and_rss(pids)[1])

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self.started
        self.cores = {name: (cpu_and_rss(pids)[0] - self.cpu0[name]) / elapsed for name, pids in self.trees.items()}

    def table(self) -> str:
        return "\n".join(
            f"  {name:<10} {self.cores[name]:5.2f} cores   peak RSS {self.peak[name] / 2**20:6.0f} MiB"
            f"   ({len(self.trees[name])} processes)"
            for name in self.trees
        )


def wrk(url: str, body: dict, headers: dict[str, str], *, seconds: int, connections: int, workdir: Path,
        delay_ms: float | None = None) -> dict:
    ids_path = workdir / f"ids-{time.monotonic_ns()}.txt"
    script = workdir / "bench.lua"
    script.write_text(LUA % {
        "body": json.dumps(body, separators=(",", ":")),
        "headers": "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
        "delay": f"function delay() return {delay_ms} end" if delay_ms else "",
        "ids_path": ids_path,
    })
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wrk_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result["ids"] = [int(i) for i in ids_path.read_text().split()]
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


class Profile:
    """py-spy samples of one service's processes while the load runs: the functions that hold the time."""

    def __init__(self, platform: Platform, service: str | None, seconds: int):
        self.service, self.seconds, self.workdir = service, seconds, platform.workdir
        self.pids = process_tree(platform.processes[service].pid)[1:] if service else []
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        for pid in self.pids:
            self.procs.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "200", "--nonblocking", "--gil",
                 "--duration", str(max(self.seconds - 4, 2)), "--format", "raw", "--output", str(self.workdir / f"spy-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        return self

    def __exit__(self, *exc):
        if not self.pids:
            return
        for proc in self.procs:
            proc.wait()
        inclusive: dict[str, int] = {}
        total = 0
        for pid in self.pids:
            for line in (self.workdir / f"spy-{pid}.txt").read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                total += int(count)
                for frame in set(stack.split(";")):
                    name = frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")") if "(" in frame else frame
                    inclusive[name] = inclusive.get(name, 0) + int(count)
        print(f"\n  py-spy, {self.service} ({total} samples): functions by share of samples, inclusive")
        for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:40]:
            print(f"  {100 * count / total:5.1f} %  {name}")


def report(title: str, result: dict, usage: Usage | None) -> None:
    print(f"\nCPU: {cpu.describe()}")
    errors = {k: v for k, v in result["errors"].items() if v}
    print(f"\n{title}")
    print(f"  {result['requests']:,} answers in {result['duration_us'] / 1e6:.1f} s = {result['rate']:,.0f} req/s; "
          f"statuses {result['statuses']}; socket errors {errors or 'none'}")
    print(f"  latency p50 {result['p50_us'] / 1000:.2f} ms  p95 {result['p95_us'] / 1000:.2f} ms  "
          f"p99 {result['p99_us'] / 1000:.2f} ms  max {result['max_us'] / 1000:.1f} ms")
    if usage:
        print(usage.table())
    print(f"  {'wrk':<10} {result['wrk_cpu_s'] / (result['duration_us'] / 1e6):5.2f} cores")


# wrk drives the gateway as one user: that user's allowance (gateway.rate_limit_predictions) is raised out of
# reach, so the limit is still counted on every prediction (as in make run) but never refuses.
ONE_USER = {"GATEWAY_RATE_LIMIT_PREDICTIONS": os.environ.get("BENCH_RATE_LIMIT_PREDICTIONS", "1000000000")}


def start(args) -> Platform | DefaultRun:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    if args.default_run:
        platform = DefaultRun(workdir / "var", settings=ONE_USER)
        platform.wait_for_first_prediction()
        return platform
    settings = dict(ONE_USER)
    if args.trace:  # every service exports its spans to a receiver in this process that only counts them
        from tests.e2e.cluster import Spans

        args.spans = Spans(decode=False)
        settings.update(OTEL_EXPORTER_OTLP_ENDPOINT=args.spans.endpoint)
    platform = Platform(workdir=workdir, workers=SERVING_WORKERS, settings=settings)
    platform.start()
    platform.ensure_production_model()
    return platform


def run_direct(platform: Platform, args) -> None:
    url = platform.url("ml") + "/predict"
    body = {"pixels": a_digit()}
    headers = {"X-Service-Token": platform.env["SERVICE_TOKEN"]}
    wrk(url, body, headers, seconds=3, connections=args.connections, workdir=platform.workdir)
    with Usage(platform) as usage, Profile(platform, args.profile, args.seconds):
        result = wrk(url, body, headers, seconds=args.seconds, connections=args.connections, workdir=platform.workdir)
    report(f"ml_svc POST /predict, {args.connections} connections, {args.seconds} s", result, usage)


def viewer_token(platform: Platform) -> str:
    return requests.post(platform.url("gateway") + "/api/auth/token",
                         json={"username": "viewer", "password": platform.demo_password}, timeout=10).json()["token"]


def history_check(platform: Platform, acknowledged: list[int]) -> tuple[int, int]:
    """(acknowledged ids found in history, rows in history)."""
    with psycopg2.connect(platform.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM registry_prediction WHERE id = ANY(%s)", (acknowledged,))
        found = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM registry_prediction")
        return found, cursor.fetchone()[0]


def run_gateway(platform: Platform, args) -> dict:
    url = platform.url("gateway") + "/api/predictions"
    body = {"pixels": a_digit()}
    headers = {"Authorization": f"Token {viewer_token(platform)}"}
    wrk(url, body, headers, seconds=3, connections=args.connections, workdir=platform.workdir)
    time.sleep(1.0)
    rows_before = history_check(platform, [])[1]
    with Usage(platform) as usage, Profile(platform, args.profile, args.seconds):
        result = wrk(url, body, headers, seconds=args.seconds, connections=args.connections, workdir=platform.workdir)
    report(f"gateway POST /api/predictions (recorded), {args.connections} connections, {args.seconds} s", result, usage)
    time.sleep(1.0)
    found, rows = history_check(platform, result["ids"])
    created = result["statuses"].get("201", 0)
    print(f"  201 answers {created:,}; their ids in history {found:,}; predictions lost {created - found}; "
          f"rows added {rows - rows_before:,} (requests in flight when wrk stopped, unseen by it, "
          f"may add up to {args.connections})")
    return result


def run_explain(platform: Platform, args) -> None:
    """The explanation's own latency, on distinct official test digits (none remembered yet), beside a plain
    prediction's on the same digits: asked for a recorded prediction, again (remembered), and inline."""
    data = gzip.decompress((MNIST_TEST / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
    base = platform.url("gateway")
    headers = {"Authorization": f"Token {viewer_token(platform)}"}
    session = requests.Session()
    timings: dict[str, list[float]] = {"prediction": [], "explanation (first)": [], "explanation (again)": [],
                                       "prediction with explain: true": []}

    def timed(name: str, method: str, url: str, **kwargs) -> dict:
        started = time.perf_counter()
        answer = session.request(method, url, headers=headers, timeout=60, **kwargs)
        timings[name].append((time.perf_counter() - started) * 1000)
        assert answer.status_code in (200, 201), answer.text[:300]
        return answer.json()

    nearest = 0
    for n in range(args.explanations):
        prediction = timed("prediction", "POST", f"{base}/api/predictions", json={"pixels": images[n].tolist()})
        why = timed("explanation (first)", "GET", f"{base}/api/predictions/{prediction['id']}/explanation")
        timed("explanation (again)", "GET", f"{base}/api/predictions/{prediction['id']}/explanation")
        nearest += bool(why.get("nearest"))
        timed("prediction with explain: true", "POST", f"{base}/api/predictions",
              json={"pixels": images[args.explanations + n].tolist(), "explain": True})
    print(f"\nexplanations through the gateway, {args.explanations} distinct official test digits, one client "
          f"({nearest} answered with nearest training digits):")
    for name, values in timings.items():
        print(f"  {name:32s} p50 {np.percentile(values, 50):7.1f} ms   p95 {np.percentile(values, 95):7.1f} ms")


def run_overload(platform: Platform, args) -> None:
    capacity = run_gateway(platform, args)["rate"]
    url = platform.url("gateway") + "/api/predictions"
    headers = {"Authorization": f"Token {viewer_token(platform)}"}
    connections = args.overload_connections
    offered = 3 * capacity
    delay_ms = max(connections / offered * 1000.0, 0.01)
    probes: list[tuple[float, int]] = []
    stop = threading.Event()

    def probe():
        session = requests.Session()
        while not stop.wait(0.2):
            started = time.perf_counter()
            try:
                status = session.post(url, json={"pixels": a_digit()}, headers=headers, timeout=10).status_code
            except requests.RequestException:
                status = 0
            probes.append((time.perf_counter() - started, status))

    prober = threading.Thread(target=probe, daemon=True)
    with Usage(platform) as usage:
        prober.start()
        result = wrk(url, {"pixels": a_digit()}, headers, seconds=args.overload_seconds, connections=connections,
                     workdir=platform.workdir, delay_ms=delay_ms)
        stop.set()
        prober.join()
    report(f"overload: {connections} connections pacing {offered:,.0f} req/s (3x {capacity:,.0f}) "
           f"for {args.overload_seconds} s", result, usage)
    other = {s: n for s, n in result["statuses"].items() if s not in {"201", "429", "503"}}
    answered = [t for t, s in probes if s == 201]
    print(f"  answers other than 201/429/503: {other or 'none'}; probe requests: {len(probes)}, "
          f"201: {len(answered)}, slowest {max(t for t, _ in probes) * 1000:.0f} ms")
    found, _ = history_check(platform, result["ids"])
    print(f"  201 answers {result['statuses'].get('201', 0):,}; their ids in history {found:,}")
    for name in ("gateway", "ml", "storage"):
        assert platform.processes[name].poll() is None, f"{name} exited"
    time.sleep(2.0)
    after = [requests.post(url, json={"pixels": a_digit()}, headers=headers, timeout=10).status_code for _ in range(20)]
    print(f"  after the overload: {after.count(201)}/20 answered 201; every service still running")


PEERS = {
    "FastAPI + uvicorn": ["uvicorn", "bench.peers.fastapi_app:app", "--workers", "2", "--loop", "uvloop", "--http",
                          "httptools", "--host", "127.0.0.1", "--port", "{port}"],
    "Flask + gunicorn": ["gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "bench.peers.flask_app:app"],
}


def serving_model_file(platform: Platform | DefaultRun) -> tuple[Path, dict]:
    """The production version as the ONNX file ml_svc serves (its weights fetched from storage_svc, and quantised
    to int8 where ml_svc's check lets it: `serving_precision` as configured for ml_svc)."""
    sys.path.insert(0, str(ROOT / "ml_svc"))
    from kit.clients import StorageClient
    from ml_svc.architectures import get_architecture
    from ml_svc.evaluation import dataset_split, held_out_dataset_id
    from ml_svc.serving import serving_for
    from ml_svc.weights import load_weights

    storage = {"X-Service-Token": platform.env["SERVICE_TOKEN"]}
    version = requests.get(platform.url("storage") + "/aliases/production", headers=storage, timeout=10).json()["model_version"]
    weights = requests.get(platform.url("storage") + f"/blobs/{version['weights_sha256']}", headers=storage, timeout=30).content
    module = get_architecture(version["architecture"]).build(version["hyperparameters"])
    load_weights(module, weights, expected_sha256=version["weights_sha256"])
    path = platform.workdir / f"v{version['id']}.onnx"
    precision = os.environ.get("ML_SERVING_PRECISION", "int8")  # the services inherit it too
    data = dataset_split(StorageClient(platform.url("storage"), platform.env["SERVICE_TOKEN"]), held_out_dataset_id(version))
    served = serving_for(module, precision=precision, threads=1, max_drop=float(os.environ.get("ML_INT8_MAX_ACCURACY_DROP", "0.002")),
                         train_images=data.train_images, val_images=data.val_images, val_labels=data.val_labels)
    print(f"ml_svc serves v{version['id']} in {served.precision} ({precision} asked for): {served.check}")
    path.write_bytes(served.model)
    return path, version


def start_peers(platform: Platform | DefaultRun, peers: dict[str, tuple[str, subprocess.Popen]]) -> None:
    """Start the peer servers into `peers` (name -> (url, process)), each checked to answer as ml_svc does."""
    model, version = serving_model_file(platform)
    print(f"serving v{version['id']}: {version['architecture']} {json.dumps(version['hyperparameters'], sort_keys=True)}")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'ml_svc'}", "PEER_MODEL": str(model),
           "PEER_MODEL_ID": str(version["id"])}
    for name, command in PEERS.items():
        port = free_port()
        argv = [str(Path(sys.executable).parent / command[0]), *(part.format(port=port) for part in command[1:])]
        log = open(platform.workdir / f"peer-{port}.log", "wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        peers[name] = (f"http://127.0.0.1:{port}/predict", process)
    body = {"pixels": a_digit()}
    for name, (url, process) in peers.items():
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"{name} exited: see {platform.workdir}/peer-*.log"
            try:
                answer = requests.post(url, json=body, timeout=2)
                reference = requests.post(platform.url("ml") + "/predict", json=body, timeout=5,
                                          headers={"X-Service-Token": platform.env["SERVICE_TOKEN"]}).json()
                if answer.json()["probabilities"] == reference["probabilities"]:
                    break
                # An ml_svc process answers in float32 until its int8 network has passed its check (seconds).
                assert time.monotonic() < deadline, f"{name} answers differently from ml_svc"
                time.sleep(0.5)
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.3)


def start_on_other_server(platform: Platform | DefaultRun, name: str, other: str) -> tuple[str, subprocess.Popen]:
    """A second instance of service `name` beside the running one, on the other HTTP server (scripts/serve.py), with
    the environment the running one got (read from /proc): the same peers, database and model."""
    pid = process_tree(platform.processes[name].pid)[-1]
    env = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    metrics = platform.workdir / f"metrics-{name}-{other}"
    port = free_port()
    env.update(DIGITLAB_HTTP_SERVER=other, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    folder = {"ml": "ml_svc", "gateway": "gateway_site"}[name]
    threads = {"ml": 1, "gateway": 96}[name]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), folder, "--bind", f"127.0.0.1:{port}",
         "--workers", str(SERVING_WORKERS[name]), "--threads", str(threads)],
        env=env, stdout=open(platform.workdir / f"{name}-{other}.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(url + "/ready", timeout=5).status_code == 200:
                return url, process
        except requests.RequestException:  # not listening yet, or its first answers are slow
            pass
        time.sleep(0.3)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"{name} on {other} did not start: see {platform.workdir}/{name}-{other}.log")


def run_compare(platform: Platform | DefaultRun, args) -> None:
    """Every server in turn, --rounds times, then one table: the median round of each, and the ratios."""
    server = {name: server_of(folder) for name, folder in (("ml", "ml_svc"), ("gateway", "gateway_site"))}
    other = {name: "gunicorn" if running == "granian" else "granian" for name, running in server.items()}
    body = {"pixels": a_digit()}
    service = {"X-Service-Token": platform.env["SERVICE_TOKEN"]}
    viewer = {"Authorization": f"Token {viewer_token(platform)}"}
    peers: dict[str, tuple[str, subprocess.Popen]] = {}  # every server started here, stopped at the end
    try:
        start_peers(platform, peers)
        targets = {name: (url, {}) for name, (url, _) in peers.items()}
        targets["ml_svc POST /predict"] = (platform.url("ml") + "/predict", service)
        targets["gateway POST /api/predictions"] = (platform.url("gateway") + "/api/predictions", viewer)
        if args.other_server:
            for name in ("ml", "gateway"):
                peers[f"{name} on {other[name]}"] = start_on_other_server(platform, name, other[name])
            targets[f"ml_svc on {other['ml']}"] = (peers[f"ml on {other['ml']}"][0] + "/predict", service)
            targets[f"gateway app on {server['gateway']}, no front"] = (platform.url("gateway_app") + "/api/predictions",
                                                                       viewer)
            targets[f"gateway app on {other['gateway']}, no front"] = (
                peers[f"gateway on {other['gateway']}"][0] + "/api/predictions", viewer)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for url, headers in targets.values():
            wrk(url, body, headers, seconds=3, connections=args.connections, workdir=platform.workdir)
        for round_ in range(args.rounds):
            for name, (url, headers) in targets.items():
                result = wrk(url, body, headers, seconds=args.seconds, connections=args.connections,
                             workdir=platform.workdir)
                results[name].append(result)
                print(f"round {round_ + 1}: {name}: {result['rate']:,.0f} req/s, p99 {result['p99_us'] / 1000:.1f} ms, "
                      f"statuses {result['statuses']}", flush=True)
    finally:
        for _, process in peers.values():
            os.killpg(process.pid, signal.SIGTERM)
    median = {name: sorted(runs, key=lambda r: r["rate"])[len(runs) // 2] for name, runs in results.items()}
    ml = median["ml_svc POST /predict"]["rate"]
    print(f"\nCPU: {cpu.describe()}")
    print(f"{args.connections} connections, {args.seconds} s per turn, median of {args.rounds} rounds "
          f"({'make run' if args.default_run else 'benchmark platform'})")
    print("| server | req/s | p50 ms | p99 ms | not 2xx | ratio |\n|---|---|---|---|---|---|")
    for name, result in median.items():
        bad = sum(n for status, n in result["statuses"].items() if not status.startswith("2"))
        ratio = (f"ml_svc = {ml / result['rate']:.2f}x this" if name in PEERS
                 else f"{result['rate'] / ml:.2f}x ml_svc" if name != "ml_svc POST /predict" else f"on {server['ml']}")
        print(f"| {name} | {result['rate']:,.0f} | {result['p50_us'] / 1000:.1f} | {result['p99_us'] / 1000:.1f} | "
              f"{bad} | {ratio} |")


def admin_api(platform: Platform | DefaultRun):
    token = requests.post(platform.url("gateway") + "/api/auth/token",
                          json={"username": "admin", "password": platform.demo_password}, timeout=10).json()["token"]
    return {"Authorization": f"Token {token}"}


def point_candidate(platform: Platform | DefaultRun, headers: dict, version_id: int) -> None:
    """Move the candidate alias; shadow scoring is on while the candidate is not production's own version."""
    requests.post(f"{platform.url('gateway')}/api/models/{version_id}/promote",
                  json={"alias": "candidate", "reason": "bench"}, headers=headers, timeout=10).raise_for_status()
    time.sleep(3.0)  # every serving process re-reads the aliases (alias_refresh_s) and readies the candidate


def shadowed_rows(platform: Platform | DefaultRun) -> int:
    with psycopg2.connect(platform.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM registry_prediction WHERE shadow_version_id IS NOT NULL")
        return cursor.fetchone()[0]


def run_shadow(platform: Platform | DefaultRun, args) -> None:
    """The gateway's prediction path with shadow scoring off (the candidate alias on production's version) and on (a
    candidate of the same architecture, trained for one epoch), in turns of --seconds, --rounds times each."""
    gateway = platform.url("gateway")
    admin = admin_api(platform)
    production = requests.get(f"{gateway}/api/rollout", headers=admin, timeout=10).json()["production"]
    started = requests.post(f"{gateway}/api/scenarios/train-model", headers=admin, timeout=10, json={
        "dataset_id": production["datasets"][0], "architecture": production["architecture"],
        "hyperparameters": {**production["hyperparameters"], "epochs": 1, "time_budget_s": 0}})
    started.raise_for_status()
    deadline = time.monotonic() + 600
    while (run := requests.get(f"{gateway}/api/runs/{started.json()['id']}", headers=admin, timeout=10).json())[
            "status"] not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() > deadline:
            sys.exit("the candidate's training did not end in 10 minutes")
        time.sleep(1)
    if run["status"] != "succeeded":
        sys.exit(f"the candidate's training {run['status']}: {run['error']}")
    candidate = run["result"]["model_version_id"]
    print(f"production v{production['id']} and candidate v{candidate}: {production['architecture']}, "
          f"{production['parameter_count']:,} parameters")
    url, body = f"{gateway}/api/predictions", {"pixels": a_digit()}
    headers = {"Authorization": f"Token {viewer_token(platform)}"}
    results: dict[str, list[dict]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode, version in (("off", production["id"]), ("on", candidate)):
            point_candidate(platform, admin, version)
            wrk(url, body, headers, seconds=3, connections=args.connections, workdir=platform.workdir)
            before = shadowed_rows(platform)
            with Usage(platform) as usage:
                result = wrk(url, body, headers, seconds=args.seconds, connections=args.connections,
                             workdir=platform.workdir)
            time.sleep(1.0)
            result["shadowed"] = shadowed_rows(platform) - before
            result["ml_ms"] = 1000 * usage.cores["ml"] / result["rate"]  # ml_svc's CPU per answered prediction
            results[mode].append(result)
            print(f"  shadow {mode:<3}: {result['rate']:,.0f} req/s, p50 {result['p50_us'] / 1000:.2f} ms, "
                  f"p99 {result['p99_us'] / 1000:.2f} ms, statuses {result['statuses']}, "
                  f"shadow rows added {result['shadowed']:,}, ml_svc CPU {result['ml_ms']:.2f} ms a prediction")
    print(f"\nCPU: {cpu.describe()}")
    print(f"gateway POST /api/predictions, {args.connections} connections, {args.seconds} s x {args.rounds} rounds each "
          "(medians)")
    median = {mode: {key: float(np.median([r[key] for r in runs])) for key in ("rate", "p50_us", "p99_us", "ml_ms")}
              for mode, runs in results.items()}
    for mode in ("off", "on"):
        print(f"  shadow {mode:<3}: {median[mode]['rate']:,.0f} req/s  p50 {median[mode]['p50_us'] / 1000:.2f} ms  "
              f"p99 {median[mode]['p99_us'] / 1000:.2f} ms  ml_svc CPU {median[mode]['ml_ms']:.2f} ms a prediction")
    print(f"  on/off: throughput x{median['on']['rate'] / median['off']['rate']:.2f}, "
          f"p99 x{median['on']['p99_us'] / median['off']['p99_us']:.2f}, "
          f"ml_svc CPU a prediction x{median['on']['ml_ms'] / median['off']['ml_ms']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["direct", "gateway", "overload", "compare", "shadow", "explain"])
    parser.add_argument("--explanations", type=int, default=40, help="explain: distinct digits explained")
    parser.add_argument("--rounds", type=int, default=3,
                        help="compare, shadow: turns per server or mode (the median is reported)")
    parser.add_argument("--other-server", action="store_true",
                        help="compare: also ml_svc and the gateway on the HTTP server make run does not use (scripts/serve.py)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--overload-seconds", type=int, default=30)
    parser.add_argument("--overload-connections", type=int, default=512)
    parser.add_argument("--default-run", action="store_true",
                        help="start the platform exactly as `make run` does (scripts/run_local.py, Procfile, first model)")
    parser.add_argument("--trace", action="store_true",
                        help="with tracing on: the services export their spans over OTLP to a receiver in this "
                             "process that counts them (kit/tracing.py; not with --default-run)")
    parser.add_argument("--profile", choices=["ml", "gateway", "storage"],
                        help="also sample this service with py-spy and print where its time goes")
    args = parser.parse_args()
    if args.trace and args.default_run:
        parser.error("--trace starts the platform itself: not with --default-run")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    platform = start(args)
    try:
        {"direct": run_direct, "gateway": run_gateway, "overload": run_overload,
         "compare": run_compare, "shadow": run_shadow, "explain": run_explain}[args.scenario](platform, args)
    finally:
        platform.stop()
        if getattr(args, "spans", None) is not None:
            print(f"  spans exported: {args.spans.exports:,} OTLP requests, {args.spans.bytes / 1e6:.1f} MB")
            args.spans.stop()


if __name__ == "__main__":
    main()
