"""The functions this gateway serves: the catalog read at start, read again when the
folder changes (``reload``, on in dev mode), and the deployment's secrets."""

from __future__ import annotations

from pathlib import Path

import structlog

from orgbase.core.errors import MethodNotAllowed, NotFound, Unavailable
from orgbase.core.settings import parse_env_file
from orgbase.functions.loader import Catalog, fingerprint, load_catalog
from orgbase.functions.spec import FunctionSpec

log = structlog.get_logger("orgbase.functions")


def load_secrets(path: str | None) -> dict[str, str]:
    """The secrets file's values (none without one; a missing file is logged, not fatal:
    the functions that read a secret fail, the others run)."""
    if path is None:
        return {}
    try:
        return parse_env_file(Path(path).read_text())
    except (OSError, ValueError) as exc:
        log.error("function secrets unreadable", path=path, error=type(exc).__name__)
        return {}


class Registry:
    def __init__(self, directory: Path, secrets_file: str | None) -> None:
        self.directory = directory
        self.secrets_file = secrets_file
        self.catalog = Catalog(directory)
        self.secrets: dict[str, str] = {}

    def load(self) -> None:
        self.catalog = load_catalog(self.directory)
        self.secrets = load_secrets(self.secrets_file)
        for spec in self.catalog.functions.values():
            if spec.error is not None:
                log.error("function cannot be served", function=spec.name, error=spec.error)
        log.info("functions loaded", functions=sorted(self.catalog.functions))

    def changed(self) -> bool:
        return fingerprint(self.directory) != self.catalog.fingerprint

    def lookup(self, name: str, method: str) -> FunctionSpec:
        """The function ``name`` for ``method``: 404, 503 (cannot run) or 405 otherwise."""
        spec = self.catalog.get(name)
        if spec is None:
            raise NotFound(f"no function named {name!r}", code="function_not_found")
        if spec.error is not None:
            raise Unavailable(
                f"the function {name} cannot be served: its module is wrong",
                code="function_unavailable",
                hint="the gateway's log says why",
            )
        if method not in spec.config.methods:
            allowed = ", ".join(spec.config.methods)
            raise MethodNotAllowed(
                f"the function {name} answers {allowed}",
                code="method_not_allowed",
                details={"allowed": list(spec.config.methods)},
            )
        return spec

    def secrets_of(self, spec: FunctionSpec) -> dict[str, str]:
        return {name: self.secrets[name] for name in spec.config.secrets if name in self.secrets}
