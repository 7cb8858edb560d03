"""The Python SDK (httpx)."""
