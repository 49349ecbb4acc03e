# syntax=docker/dockerfile:1
# The one LeadStream image: every service (ingest, filter, verify, batch, bison-sync, jobs,
# audit) and the `leadstream` CLI (migrate, topics apply) run from it; docker-compose.yml picks
# the command. Dependencies come from uv.lock exactly (--frozen), without the dev group.

# ---------------------------------------------------------------- build: a venv at /app/.venv
FROM python:3.11-slim-bookworm AS build

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# The same uv release that wrote uv.lock.
RUN pip install --no-cache-dir --root-user-action=ignore uv==0.13.9

WORKDIR /app

# Third-party dependencies first: this layer is rebuilt only when the lock or a manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/leadstream/pyproject.toml libs/leadstream/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/filter/pyproject.toml services/filter/
COPY services/verify/pyproject.toml services/verify/
COPY services/batch/pyproject.toml services/batch/
COPY services/bison-sync/pyproject.toml services/bison-sync/
COPY services/jobs/pyproject.toml services/jobs/
COPY services/audit/pyproject.toml services/audit/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace

# Then the workspace packages themselves, installed as wheels (not editable), so the runtime
# stage needs the venv only, not the source tree.
COPY libs ./libs
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim-bookworm AS runtime

RUN groupadd --system --gid 10001 leadstream \
    && useradd --system --uid 10001 --gid leadstream --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin leadstream \
    && install -d -o leadstream -g leadstream /app

# /app itself is the service user's (a working folder for local state such as the jobs
# tracker's table data); the code in /app/.venv and /app/schemas stays root-owned, read-only.
WORKDIR /app

COPY --from=build --chown=root:root /app/.venv /app/.venv
# Avro schemas are loaded by path (schemas/*.avsc, relative to /app).
COPY --chown=root:root schemas ./schemas

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Numeric, so orchestrators can check runAsNonRoot.
USER 10001:10001

# ingest's HTTP API; the stages serve /healthz and /metrics on 9101-9106.
EXPOSE 8000 9101 9102 9103 9104 9105 9106

CMD ["leadstream-ingest"]
