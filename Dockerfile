# jobpulse: one image for the API (`jobpulse api`), workers (`jobpulse worker`) or both (`jobpulse serve`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    JOBPULSE_HOST=0.0.0.0 \
    JOBPULSE_DATA_DIR=/var/lib/jobpulse

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY api ./api
COPY workers ./workers
COPY cli ./cli
RUN pip install . \
    && useradd --system --home-dir /var/lib/jobpulse --create-home jobpulse

USER jobpulse
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["jobpulse", "api"]
