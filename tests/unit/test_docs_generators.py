"""The generated documentation pages stay whole: every setting documented, the error codes
found with their statuses, and the README's quickstart in step with its example files."""

from __future__ import annotations

from orgbase.core.settings import variable_names
from scripts.docs import error_codes, quickstart, settings_reference


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


def test_error_codes_are_found_with_their_statuses() -> None:
    found = {entry.code: entry.statuses for entry in error_codes.collect()}
    assert found["not_found"] == {404}
    assert found["token_expired"] == {401}
    assert found["local_server_gap"] == {400}
    assert found["org_rate_limited"] == {429}
    assert "invalid_request_id" in found


def test_the_readme_quickstart_matches_its_files_and_links() -> None:
    readme = quickstart.README.read_text()
    assert quickstart.problems(readme) == []
    assert len(readme.splitlines()) <= 300
