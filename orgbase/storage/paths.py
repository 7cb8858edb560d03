"""Which requests carry a blob as their body (the platform's JSON body guard lets them
stream through: they are read chunk by chunk, under the storage limits)."""

from __future__ import annotations

PREFIX = "/storage/v1"
_NOT_UPLOADS = frozenset({"list", "move", "copy", "sign", "info"})


def streams_body(method: str, path: str) -> bool:
    if not path.startswith(PREFIX + "/"):
        return False
    parts = path[len(PREFIX) :].split("/")  # ['', 'object', bucket, ...]
    if len(parts) < 3:
        return False
    if parts[1] == "upload" and parts[2] == "resumable":
        return method in ("PATCH", "POST")
    if parts[1] != "object" or method not in ("POST", "PUT"):
        return False
    if parts[2] == "upload":
        return method == "PUT" and len(parts) > 4 and parts[3] == "sign"
    return parts[2] not in _NOT_UPLOADS and len(parts) > 3
