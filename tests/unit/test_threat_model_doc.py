"""docs/security/threat-model.md names the test of every invariant: each named test must
exist, so the table cannot point at a test that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security" / "threat-model.md"
NAMED = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`|`(tests/[\w/]+\.py)`")


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test or None) for every reference; a bare `::name` is in the file named last."""
    found: list[tuple[str, str | None]] = []
    current = ""
    for match in NAMED.finditer(text):
        path, name, bare = match.groups()
        current = path or bare or current
        found.append((current, name))
    return found


def test_every_test_the_threat_model_names_exists() -> None:
    references = named_tests(DOC.read_text())
    assert len(references) > 50
    missing = []
    for path, name in references:
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"def {name}\b", source.read_text()):
            missing.append(f"{path}::{name}")
    assert missing == []
