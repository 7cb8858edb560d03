"""Accounts, passwords, tokens, sessions, API keys and the auth routes."""
