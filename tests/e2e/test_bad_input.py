"""Hostile input on every public endpoint: a JSON 4xx in the error shape, nothing written, every service still ready."""

from __future__ import annotations

import base64
import io
import json
import socket
import time

import numpy as np
import pytest
import requests
from PIL import Image

from tests.e2e.support import Api, sample_digits


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BLANK_28 = [[0] * 28] * 28
DIGIT = sample_digits()[0][321]
GOOD_PNG = png(255 - np.asarray(Image.fromarray(DIGIT).resize((140, 140))))
bomb = io.BytesIO()
Image.new("1", (20000, 20000)).save(bomb, format="PNG")
GIF = io.BytesIO()
Image.new("L", (28, 28), 255).save(GIF, format="GIF")
BLANK_16BIT = png(np.zeros((64, 64), np.uint16), "I;16")
BLANK_RGBA = png(np.zeros((64, 64, 4), np.uint8), "RGBA")

# (kind, method, path, how the body is sent, body)
CASES: list[tuple[str, str, str, str, object]] = []


def case(kind: str, method: str, path: str, how: str, body: object = None) -> None:
    CASES.append((kind, method, path, how, body))


JSON_ENDPOINTS = ["/api/predictions", "/api/predictions/batch", "/api/samples", "/api/scenarios/collect-and-store",
                  "/api/scenarios/train-model", "/api/scenarios/fine-tune", "/api/models/{model}/promote",
                  "/api/predictions/{prediction}/feedback", "/api/samples/{sample}/review", "/api/auth/token"]
for path in JSON_ENDPOINTS:
    case("empty body", "POST", path, "raw-json", b"")
    case("malformed JSON", "POST", path, "raw-json", b'{"source": "mnist-5k",')
    case("JSON that is not an object", "POST", path, "raw-json", b"[1, 2, 3]")
    case("wrong content type", "POST", path, "raw-xml", b"<digit>7</digit>")
    case("unknown fields", "POST", path, "json", {"surprise": True})
case("huge body", "POST", "/api/predictions", "raw-json", b'{"pixels": [' + b"0," * 2_000_000 + b"0]}")
case("huge body", "POST", "/api/scenarios/train-model", "raw-json", b'{"dataset_id": 1, "x": "' + b"a" * 3_000_000 + b'"}')
case("huge body", "POST", "/api/predictions", "multipart", {"image": ("big.png", b"\x89PNG" + b"0" * 2_200_000)})
for wrong in ("seven", True, [7], {"n": 7}, 7.5, None):
    case("wrong types", "POST", "/api/predictions", "json", {"pixels": wrong})
    case("wrong types", "POST", "/api/scenarios/train-model", "json", {"dataset_id": wrong})
    case("wrong types", "POST", "/api/predictions/{prediction}/feedback", "json", {"label": wrong})
case("wrong types", "POST", "/api/scenarios/collect-and-store", "json", {"source": "mnist-5k", "batch_size": "big"})
case("wrong types", "POST", "/api/scenarios/train-model", "json", {"dataset_id": "{dataset}", "hyperparameters": {"epochs": "ten"}})
case("wrong types", "POST", "/api/scenarios/train-model", "json", {"dataset_id": "{dataset}", "hyperparameters": [1]})
case("wrong types", "GET", "/api/predictions?digit=seven", "none")
case("missing fields", "POST", "/api/scenarios/collect-and-store", "json", {"batch_size": 10})
case("missing fields", "POST", "/api/scenarios/train-model", "json", {"architecture": "cnn"})
case("missing fields", "POST", "/api/scenarios/fine-tune", "json", {"hyperparameters": {}})
case("missing fields", "POST", "/api/samples", "json", {"pixels": BLANK_28})
case("missing fields", "POST", "/api/predictions", "multipart", {"label": "7"})
case("out-of-range values", "POST", "/api/scenarios/collect-and-store", "json", {"source": "mnist-5k", "batch_size": 0})
case("out-of-range values", "POST", "/api/scenarios/collect-and-store", "json", {"source": "mnist-5k", "max_samples": -5})
case("out-of-range values", "POST", "/api/scenarios/train-model", "json", {"dataset_id": "{dataset}", "hyperparameters": {"epochs": 10_000}})
case("out-of-range values", "POST", "/api/scenarios/train-model", "json", {"dataset_id": "{dataset}", "hyperparameters": {"learning_rate": -1}})
case("out-of-range values", "POST", "/api/scenarios/train-model", "json", {"dataset_id": "{dataset}", "architecture": "resnet-9000"})
case("out-of-range values", "POST", "/api/predictions/{prediction}/feedback", "json", {"label": 10})
case("out-of-range values", "POST", "/api/samples/{sample}/review", "json", {"decision": "maybe"})
case("out-of-range values", "POST", "/api/models/{model}/promote", "json", {"alias": "staging"})
case("truncated PNG", "POST", "/api/predictions", "json", {"image_base64": b64(GOOD_PNG[: len(GOOD_PNG) // 2])})
case("truncated PNG", "POST", "/api/predictions", "multipart", {"image": ("digit.png", GOOD_PNG[:60])})
case("truncated PNG", "POST", "/api/samples", "json", {"label": 3, "image_base64": b64(GOOD_PNG[:100])})
case("extension/magic mismatch", "POST", "/api/predictions", "multipart", {"image": ("digit.png", GIF.getvalue())})
case("extension/magic mismatch", "POST", "/api/predictions", "multipart", {"image": ("digit.png", b"%PDF-1.7 not an image")})
case("extension/magic mismatch", "POST", "/api/predictions", "json", {"image_base64": b64(b"GIF89a" + b"\x00" * 40)})
case("image bomb", "POST", "/api/predictions", "json", {"image_base64": b64(bomb.getvalue())})
case("image bomb", "POST", "/api/predictions", "multipart", {"image": ("bomb.png", bomb.getvalue())})
case("image bomb", "POST", "/api/samples", "json", {"label": 1, "image_base64": b64(bomb.getvalue())})
case("16-bit image, blank", "POST", "/api/predictions", "json", {"image_base64": b64(BLANK_16BIT)})
case("RGBA image, blank", "POST", "/api/predictions", "json", {"image_base64": b64(BLANK_RGBA)})
case("RGBA image, blank", "POST", "/api/predictions", "multipart", {"image": ("canvas.png", BLANK_RGBA)})
for shape in ([[0] * 28] * 27, [[0] * 29] * 28, [0] * 784, [[[0]] * 28] * 28, []):
    case("wrong pixel array shape", "POST", "/api/predictions", "json", {"pixels": shape})
case("wrong pixel array shape", "POST", "/api/predictions/batch", "json", {"images": []})
case("wrong pixel array shape", "POST", "/api/predictions/batch", "json", {"images": [{"pixels": BLANK_28}] * 257})
for value in ("NaN", "Infinity", -1, 256, 1e9):
    case("NaN and out-of-range pixels", "POST", "/api/predictions", "raw-json",
         json.dumps({"pixels": [[0] * 27 + [value]] + [[0] * 28] * 27}).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity").encode())
case("blank canvas", "POST", "/api/predictions", "json", {"pixels": BLANK_28})
case("blank canvas", "POST", "/api/predictions", "json", {"image_base64": b64(png(np.full((280, 280), 255, np.uint8)))})
case("blank canvas", "POST", "/api/predictions", "json", {"image_base64": "data:image/png;base64," + b64(BLANK_RGBA)})
case("blank canvas", "POST", "/api/samples", "json", {"label": 4, "pixels": BLANK_28})
for path in ("/api/runs/987654", "/api/models/987654", "/api/datasets/987654", "/api/models/987654/report.pdf",
             "/api/models/987654/compare?with=1"):
    case("unknown ids", "GET", path, "none")
case("unknown ids", "POST", "/api/predictions/987654/feedback", "json", {"label": 3})
case("unknown ids", "POST", "/api/samples/987654/review", "json", {"decision": "accept"})
case("unknown ids", "POST", "/api/models/987654/promote", "json", {"reason": "x"})
case("unknown ids", "POST", "/api/scenarios/train-model", "json", {"dataset_id": 987654})
case("unknown ids", "POST", "/api/scenarios/fine-tune", "json", {"base_model_id": 987654})
case("unknown ids", "GET", "/api/no-such-endpoint", "none")
case("other users' objects", "POST", "/api/predictions/{others_prediction}/feedback", "json", {"label": 3})
case("other users' objects", "GET", "/api/runs/{others_run}", "none")

# The strict input layer: nesting, integers no client holds exactly, digits that are not ASCII, NUL bytes.
NESTED = b'{"a": ' * 40 + b"1" + b"}" * 40
for path in ("/api/auth/token", "/api/predictions", "/api/scenarios/train-model", "/api/samples"):
    case("deep JSON", "POST", path, "raw-json", b"[" * 100_000 + b"]" * 100_000)
    case("deep JSON", "POST", path, "raw-json", NESTED)
case("deep JSON", "POST", "/api/scenarios/train-model", "raw-json",
     b'{"dataset_id": 1, "hyperparameters": ' + NESTED + b"}")
for big in (2**64, 2**70, -(2**63) - 1, 2**53 + 1, 10**400):
    case("huge integers", "POST", "/api/scenarios/train-model", "raw-json", b'{"dataset_id": %d}' % big)
    case("huge integers", "POST", "/api/scenarios/train-model", "raw-json",
         b'{"dataset_id": {dataset}, "hyperparameters": {"seed": %d}}'.replace(b"{dataset}", b"1") % big)
    case("huge integers", "POST", "/api/predictions/{prediction}/feedback", "raw-json", b'{"label": %d}' % big)
    case("huge integers", "POST", "/api/scenarios/collect-and-store", "raw-json", b'{"source": "mnist-5k", "batch_size": %d}' % big)
for path in ("/api/runs/18446744073709551616", "/api/models/99999999999", "/api/datasets/2147483648",
             "/api/models/{model}/compare?with=18446744073709551616", "/api/predictions?model=18446744073709551616",
             "/api/predictions?page=99999999999999999999"):
    case("huge integers", "GET", path, "none")
for digit in ("²", "٣", "１"):
    for path in ("/api/predictions?digit={d}", "/api/predictions?page={d}", "/api/models/{{model}}/compare?with={d}",
                 "/api/collector/log?limit={d}", "/api/runs?page={d}", "/api/predictions?model={d}"):
        case("Unicode digits", "GET", path.format(d=digit), "none")
for path, name in [("/api/runs", "kind"), ("/api/runs", "status"), ("/api/runs", "created_by"), ("/api/predictions", "user"),
                   ("/api/predictions", "corrected"), ("/api/predictions", "since"), ("/api/samples", "status"),
                   ("/api/samples", "user"), ("/api/datasets", "source"), ("/api/datasets", "split"),
                   ("/api/models", "architecture"), ("/api/runs", "page")]:
    case("NUL in a filter", "GET", f"{path}?{name}=%00", "none")
    case("NUL in a filter", "GET", f"{path}?{name}=a%00b", "none")
case("NUL in a string", "POST", "/api/scenarios/collect-and-store", "json", {"source": "mnist\u00005k"})
case("NUL in a string", "POST", "/api/models/{model}/promote", "json", {"reason": "oops\u0000"})
case("NUL in a string", "POST", "/api/auth/token", "json", {"username": "viewer\u0000", "password": "x"})


def counts(engineer: Api) -> dict:
    return {
        "predictions": engineer.get("/api/predictions").json()["count"],
        "runs": engineer.get("/api/runs").json()["count"],
        "samples": sum(engineer.get("/api/samples", params={"status": s}).json()["count"] for s in ("pending", "accepted", "rejected")),
        "datasets": engineer.get("/api/datasets").json()["count"],
        "models": engineer.get("/api/models").json()["count"],
        "ledger": engineer.get("/api/models/ledger").json()["count"],
    }


def test_the_battery_is_large_and_varied():
    assert len(CASES) >= 200 and len({kind for kind, *_ in CASES}) >= 18


@pytest.fixture(scope="module")
def world(platform):
    production = platform.ensure_production_model()
    gateway = platform.url("gateway")
    viewer, engineer = Api(gateway, "viewer", platform.demo_password), Api(gateway, "engineer", platform.demo_password)
    mine = viewer.post("/api/predictions", {"pixels": DIGIT.tolist()}).json()
    engineers = engineer.post("/api/predictions", {"pixels": DIGIT.tolist()}).json()
    sample = viewer.post("/api/samples", {"label": 5, "pixels": DIGIT.tolist()}).json()
    run = engineer.get("/api/runs").json()["results"][0]
    return {"viewer": viewer, "engineer": engineer, "ids": {
        "model": production["id"], "prediction": mine["id"], "sample": sample["id"], "dataset": production["datasets"][0],
        "others_prediction": engineers["id"], "others_run": run["id"]}}


def test_every_hostile_request_is_a_json_4xx_that_changes_nothing(world, platform):
    viewer, engineer, ids = world["viewer"], world["engineer"], world["ids"]
    before = counts(engineer)
    failures = []
    for kind, method, path, how, body in CASES:
        # Viewers own predictions and samples; engineer-only endpoints are sent by the engineer.
        caller = viewer if ("predictions" in path or path == "/api/samples" or "others" in path) else engineer
        url = caller.base + path.format(**ids)
        headers = dict(caller.headers) if path != "/api/auth/token" else {}
        if how == "json" and isinstance(body, dict) and "{dataset}" in json.dumps(body):
            body = json.loads(json.dumps(body).replace('"{dataset}"', str(ids["dataset"])))
        if how == "json":
            response = requests.request(method, url, json=body, headers=headers, timeout=30)
        elif how == "multipart":
            files = {k: v for k, v in body.items() if isinstance(v, tuple)}
            data = {k: v for k, v in body.items() if not isinstance(v, tuple)}
            response = requests.request(method, url, files=files or {"x": ("x.txt", b"")}, data=data, headers=headers, timeout=30)
        elif how.startswith("raw"):
            kind_header = "application/json" if how == "raw-json" else "application/xml"
            response = requests.request(method, url, data=body, headers={**headers, "Content-Type": kind_header}, timeout=30)
        else:
            response = requests.request(method, url, headers=headers, timeout=30)
        try:
            error = response.json()["error"]
            shaped = set(error) == {"code", "message", "details"} and error["message"]
        except (ValueError, KeyError, TypeError):
            shaped = False
        if not (400 <= response.status_code < 500 and shaped):
            failures.append((kind, method, path, response.status_code, response.text[:120]))
    assert failures == [], failures
    assert counts(engineer) == before, "nothing was written"
    for service in ("storage", "collector", "ml", "gateway"):
        assert requests.get(platform.url(service) + "/ready", timeout=5).status_code == 200, service


def test_odd_but_valid_images_are_classified_not_refused(world):
    viewer = world["viewer"]
    ink = np.asarray(Image.fromarray(DIGIT).resize((84, 84)))
    sixteen = png(ink.astype(np.uint16) * 257, "I;16")
    rgba = np.zeros((84, 84, 4), np.uint8)
    rgba[..., 3] = ink
    for image in (sixteen, png(rgba, "RGBA")):
        response = viewer.post("/api/predictions", {"image_base64": b64(image)})
        assert response.status_code == 201, response.text


def big_png_b64() -> str:
    image = Image.new("1", (2048, 2048), 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return b64(buffer.getvalue())


def test_a_batch_over_the_work_budget_is_refused_before_it_is_decoded(world):
    """Nine 2048 x 2048 images: each within the size cap, together over the 32 Mpx a request may decode."""
    started = time.monotonic()
    answer = world["viewer"].post("/api/predictions/batch", {"images": [{"image_base64": big_png_b64()}] * 9})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_much_work", answer.text
    assert time.monotonic() - started < 2


RAW_REQUESTS = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "NUL in the request line": b"GET /api/runs\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "header without a colon": b"GET /api/runs HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "Content-Length not a number": b"POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "two Content-Lengths": b"POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    "a header line of 20 KB": b"GET /api/runs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    "request line of 20 KB": b"GET /api/runs?" + b"a=1&" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    # within what the front takes, past gunicorn's own defaults: gunicorn must take them too (no HTML error)
    "request line of 5 KiB": b"GET /api/runs?" + b"a=1&" * 1250 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header of 7 KiB": b"GET /api/runs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 7000 + b"\r\n\r\n",
    "120 headers": b"GET /api/runs HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n",
    "declared body over the cap": b"POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 50000000\r\n\r\n{",
    "chunk size not hex": b"POST /api/predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
}


PASSED_ON = {"request line of 5 KiB", "a header of 7 KiB", "120 headers"}


@pytest.mark.parametrize("what", list(RAW_REQUESTS))
def test_malformed_http_gets_a_json_4xx_from_the_front(platform, what):
    with socket.create_connection(("127.0.0.1", platform.ports["gateway"]), timeout=10) as connection:
        connection.sendall(RAW_REQUESTS[what].replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        answer = b""
        while not complete(answer) and (chunk := connection.recv(65536)):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunked(body)
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500, head
    if what in PASSED_ON:  # the gateway answered it (its request id; nginx's own refusals carry none)
        assert b"x-request-id:" in head.lower(), head
    assert b"application/json" in head.lower() and set(json.loads(body)["error"]) == {"code", "message", "details"}
    assert requests.get(platform.url("gateway") + "/ready", timeout=5).status_code == 200


def complete(answer: bytes) -> bool:
    """The whole answer is in (not waiting for the server to close: after a refusal nginx lingers for 5 s)."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    if b"transfer-encoding: chunked" in head.lower():
        return body.endswith(b"0\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) >= int(lengths[0])


def dechunked(body: bytes) -> bytes:
    data = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        data, body = data + body[:length], body[length + 2:]
    return data


def test_hostile_page_forms_are_4xx_pages_that_write_nothing(world, platform):
    gateway = platform.url("gateway")
    session = requests.Session()
    login = session.get(f"{gateway}/login")
    token = session.cookies["csrftoken"]
    assert session.post(f"{gateway}/login", data={"username": "engineer", "password": platform.demo_password,
                                                   "csrfmiddlewaretoken": token}, headers={"Referer": gateway + "/login"}).ok
    assert login.ok
    csrf = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": gateway + "/train"}
    before = counts(world["engineer"])
    for dataset_id in ("abc", "²", str(2**64), "-1", "1\x00", ""):
        answer = session.post(f"{gateway}/train", data={"mode": "train", "dataset_id": dataset_id}, headers=csrf)
        assert answer.status_code == 400 and "text/html" in answer.headers["Content-Type"], (dataset_id, answer.status_code)
    for epochs in ("²", str(2**64), "NaN", "1e999", "\x00"):
        answer = session.post(f"{gateway}/train", data={"mode": "train", "dataset_id": world["ids"]["dataset"],
                                                        "epochs": epochs}, headers=csrf)
        assert answer.status_code == 400, (epochs, answer.status_code)
    for query in ("since=yesterday", "until=2026-13-45", "digit=²", "model=18446744073709551616", "user=%00",
                  "page=١"):
        page = session.get(f"{gateway}/history?{query}")
        assert page.status_code == 400, (query, page.status_code)
        if not query.startswith("page="):  # the CSV holds every page
            csv = session.get(f"{gateway}/history?format=csv&{query}")
            assert csv.status_code == 400 and not csv.headers["Content-Type"].startswith("text/csv"), query
    assert session.get(f"{gateway}/models/-1").status_code == 404
    assert "storage" not in session.get(f"{gateway}/models/-1").text.lower()
    assert counts(world["engineer"]) == before, "nothing was written"
