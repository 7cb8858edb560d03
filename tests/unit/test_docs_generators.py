"""The generated documentation pages stay whole: every setting documented, the error codes
found with their statuses, and the README's quickstart in step with its example files."""

from __future__ import annotations

from orgbase.core.settings import variable_names
from scripts.docs import quickstart, settings_reference


def test_every_setting_has_its_row_and_a_meaning() -> None:
    page = settings_reference.render()
    for variable in variable_names():
        assert f"`{variable}`" in page
    undocumented = [
        field.variable
        for section in settings_reference.sections()
        for field in section.fields
        if not field.doc
    ]
    assert undocumented == [], "add a docstring under these fields in orgbase/core/settings.py"


def test_the_readme_quickstart_matches_its_files_and_links() -> None:
    readme = quickstart.README.read_text()
    assert quickstart.problems(readme) == []
    assert len(readme.splitlines()) <= 300
