"""Gunicorn settings of the gateway (scripts/serve.py starts it with `-c config/gunicorn.conf.py`, and with the
worker processes and threads it was given: gthread when threads > 1). `DIGITLAB_HTTP_SERVER=gunicorn` puts every
service on gunicorn with these settings, to compare with granian (bench/load_predict.py compare --other-server).
"""

import os

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
