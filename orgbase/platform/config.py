"""The one place that reads the process environment.

Real environment variables win over an env file (``.orgbase/services.env`` for the local
stack), so an operator can override a single value without editing the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from orgbase.core.settings import Settings, parse_env_file, settings_from_env

ENV_FILE_VARIABLE = "ORGBASE_LOCAL_ENV_FILE"
LOCAL_ENV_FILE = Path(".orgbase") / "services.env"
"""Where `orgbase services up` writes the local stack's settings (relative to a checkout)."""


def local_env_file() -> Path | None:
    """The local stack's settings file, when it exists here and nothing else configures
    orgbase: no file named and no setting in the environment (a deployment's own
    variables are never mixed with a developer's stack)."""
    configured = any(
        key.startswith("ORGBASE_") and not key.startswith("ORGBASE_LOCAL_") for key in os.environ
    )
    if configured or os.environ.get(ENV_FILE_VARIABLE) or not LOCAL_ENV_FILE.is_file():
        return None
    return LOCAL_ENV_FILE


def environment(env_file: Path | None = None) -> dict[str, str]:
    values: dict[str, str] = {}
    path = env_file or (Path(p) if (p := os.environ.get(ENV_FILE_VARIABLE)) else None)
    if path is not None:
        values.update(parse_env_file(path.read_text()))
    values.update(os.environ)
    return values


def load_settings(env_file: Path | None = None) -> Settings:
    return settings_from_env(environment(env_file))
