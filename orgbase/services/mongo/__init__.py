"""The org-scoped document API (MongoDB)."""
