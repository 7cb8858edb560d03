"""Helpers the tests share that are not fixtures: where the local stack lives and how it is
configured (stack), direct database set-up (data), HTTP calls of the API (http), gateway
processes (processes) and bounded waiting (waiting)."""
