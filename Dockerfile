# syntax=docker/dockerfile:1
# The orgbase gateway: built from the lock file, run as a non-root user.

# -- build: resolve and install the locked dependencies and the project into /app/.venv --
FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY orgbase ./orgbase
COPY sql ./sql
RUN uv sync --frozen --no-dev --no-editable

# -- runtime: the virtualenv only; no compiler, no uv, no sources --
FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 orgbase \
    && useradd --system --uid 10001 --gid orgbase --home-dir /app --shell /usr/sbin/nologin orgbase \
    && mkdir -p /var/lib/orgbase/storage && chown orgbase:orgbase /var/lib/orgbase/storage
COPY --from=build --chown=orgbase:orgbase /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORGBASE_HTTP_HOST=0.0.0.0 \
    ORGBASE_HTTP_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
# SIGTERM: in-flight requests get ORGBASE_HTTP_SHUTDOWN_GRACE_SECONDS, new ones are refused.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orgbase"]
CMD ["serve"]
