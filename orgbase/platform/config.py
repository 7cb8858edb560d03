"""The one place that reads the process environment.

Real environment variables win over an env file (``.orgbase/services.env`` for the local
stack), so an operator can override a single value without editing the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from orgbase.core.settings import Settings, parse_env_file, settings_from_env

ENV_FILE_VARIABLE = "ORGBASE_LOCAL_ENV_FILE"


def environment(env_file: Path | None = None) -> dict[str, str]:
    values: dict[str, str] = {}
    path = env_file or (Path(p) if (p := os.environ.get(ENV_FILE_VARIABLE)) else None)
    if path is not None:
        values.update(parse_env_file(path.read_text()))
    values.update(os.environ)
    return values


def load_settings(env_file: Path | None = None) -> Settings:
    return settings_from_env(environment(env_file))
