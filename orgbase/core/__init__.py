"""Shared core: settings types, domain errors and small helpers used by every area."""
