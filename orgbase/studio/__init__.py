"""The studio web console."""
