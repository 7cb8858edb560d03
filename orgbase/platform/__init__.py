"""Wiring: the app factory, settings loading, middleware, error mapping, migrations, CLI."""
