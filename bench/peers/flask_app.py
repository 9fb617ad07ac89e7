"""The Flask peer, the stack of the original 500 req/s requirement: `gunicorn --workers 2 bench.peers.flask_app:app`."""

from flask import Flask, Response, request

from bench.peers import serving

app = Flask(__name__)


@app.post("/predict")
def predict() -> Response:
    status, body = serving.answer(request.get_data())
    return Response(body, status=status, mimetype="application/json")
