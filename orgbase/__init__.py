"""orgbase: a self-hosted, multi-tenant Backend-as-a-Service.

Areas live in subpackages (see docs/architecture.md): ``platform`` wires the application together,
``auth``, ``tenants``, ``services`` and ``observability`` hold the domain code, and
``core`` holds what every area shares (settings types, errors, ids).
"""

__version__ = "0.1.0"
