"""Gunicorn settings, for `DIGITLAB_HTTP_SERVER=gunicorn scripts/serve.py ...`: every service runs on granian by
default (scripts/serve.py); gunicorn stays selectable to compare the two (bench/load_predict.py).

WEB_CONCURRENCY sets the worker processes, SERVE_THREADS (serve.py's --threads) the threads of each (gthread when > 1).
ml_svc and storage_svc are CPU-bound: one sync worker per core measured fastest (bench/README.md).
The gateway mostly waits on its peers: its workers run threads, which also lets concurrent
predictions share one batch to ml_svc and one history write.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("SERVE_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
backlog = 2048
# Before the gateway, nginx bounds a request line and each header line to 8 KiB (config/nginx/), and its
# errors are JSON: gunicorn must take all it passes on, so that none of gunicorn's own HTML errors is seen.
limit_request_line = 8190
limit_request_field_size = 16384
limit_request_fields = 32768


def worker_exit(server, worker):
    """Before a worker process ends, finish what its application still holds (batched predictions)."""
    shutdown = getattr(getattr(worker, "wsgi", None), "shutdown", None)
    if shutdown is not None:
        shutdown()
