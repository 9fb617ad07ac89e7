"""The FastAPI peer: `uvicorn bench.peers.fastapi_app:app --workers 2 --loop uvloop --http httptools`."""

from fastapi import FastAPI, Request, Response

from bench.peers import serving

app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> Response:
    # CPU-bound work runs in the event loop: a threadpool hand-off (a plain `def` endpoint) only adds to it.
    status, body = serving.answer(await request.body())
    return Response(body, status_code=status, media_type="application/json")
