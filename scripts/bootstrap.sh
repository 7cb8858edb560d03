#!/usr/bin/env bash
# Create .venv and install the locked dependencies (uv.lock). Works as root and as a user.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION="0.13.9"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --frozen --quiet
