"""What each peer server does per request: exactly the work of ml_svc's `POST /predict`.

The same ONNX file (the serving version exported as ml_svc exports it, `inference.onnx_bytes`), run by ONNX Runtime with
the same session options and normalisation (`session_of`, `session_probabilities`), the same canonical
preprocessing (`ml_svc.inference.canonical_input`), the same JSON
(orjson) and the same answer: digit, probabilities, model, the 28x28 image it saw, latency. What the peers do not
do: check a service token, count metrics, log a JSON access line (each server logs as it does by default).
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import orjson

from kit.errors import AppError, error_body
from ml_svc.inference import canonical_input
from ml_svc.serving import session_of, session_probabilities

SESSION = session_of(Path(os.environ["PEER_MODEL"]).read_bytes(), threads=1)
MODEL = {"id": int(os.environ.get("PEER_MODEL_ID", "0")), "version": f"v{os.environ.get('PEER_MODEL_ID', '0')}"}


def answer(body: bytes) -> tuple[int, bytes]:
    """(status, JSON body) of one prediction request."""
    started = time.perf_counter()
    try:
        payload = orjson.loads(body)
        image = canonical_input(payload)
    except orjson.JSONDecodeError:
        return 400, orjson.dumps(error_body("bad_request", "The body is not valid JSON."))
    except AppError as exc:
        return exc.status, orjson.dumps(error_body(exc.code, exc.message, exc.details))
    probabilities = session_probabilities(SESSION, image[None])[0]
    return 200, orjson.dumps({
        "digit": int(probabilities.argmax()),
        "probabilities": [round(float(p), 6) for p in probabilities],
        "model": MODEL,
        "image": base64.b64encode(image.tobytes()).decode(),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    })
