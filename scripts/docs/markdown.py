"""What the generated pages share: text made safe for one cell of a Markdown table."""

from __future__ import annotations

from typing import Any


def cell(text: Any) -> str:
    """One line, pipes escaped; reStructuredText's double backticks made Markdown's."""
    return " ".join(str(text or "").split()).replace("``", "`").replace("|", "\\|")
