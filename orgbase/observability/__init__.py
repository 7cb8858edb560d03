"""Logs, health, metrics, audit, SLO and dashboards."""
