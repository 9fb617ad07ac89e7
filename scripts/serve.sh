#!/bin/sh
# A service in its container: fresh multiprocess-metrics directory, migrations when the image sets
# MIGRATE=true (the services with a database), then gunicorn with the shared config.
# Usage, from the repository root (the image's /app): serve.sh <service folder> [gunicorn options...]
set -e
service=$1
shift
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
if [ "${MIGRATE:-false}" = true ]; then
  python "$service/manage.py" migrate --no-input
fi
exec gunicorn -c config/gunicorn.conf.py --chdir "$service" --workers "$WEB_CONCURRENCY" "$@" "$service.wsgi"
