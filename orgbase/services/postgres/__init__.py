"""The tenant data API over the `api` schema (PostgREST grammar)."""
