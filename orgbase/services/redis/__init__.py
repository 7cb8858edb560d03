"""Org-scoped KV cache, realtime channels and hot keys (Redis)."""
