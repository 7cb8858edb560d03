"""The data API's own errors, in PostgREST's terms: the representation, range and method
refusals keep PostgREST's codes (their statuses are in ``orgbase.core.error_catalog``). A
failed statement keeps its SQLSTATE as the code: ``translate`` and ``DatabaseError`` live
with every other PostgreSQL translation in ``orgbase.core.pg_errors``."""

from __future__ import annotations

from orgbase.core import errors as core_errors
from orgbase.core.errors import UnsupportedMediaType
from orgbase.core.pg_errors import DatabaseError, translate

__all__ = [
    "DatabaseError",
    "MethodNotAllowed",
    "NotAcceptable",
    "RangeNotSatisfiable",
    "UnsupportedMediaType",
    "translate",
]


class NotAcceptable(core_errors.NotAcceptable):
    """One object asked for (``Accept: application/vnd.pgrst.object+json``), several rows."""

    default_code = "PGRST116"


class RangeNotSatisfiable(core_errors.RangeNotSatisfiable):
    default_code = "PGRST103"


class MethodNotAllowed(core_errors.MethodNotAllowed):
    """A VOLATILE function called with GET (PostgREST runs GET read-only)."""

    default_code = "PGRST101"
