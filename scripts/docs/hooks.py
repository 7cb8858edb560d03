"""MkDocs hooks: the generated pages (configuration, the API reference and its OpenAPI
document), made from the code at build time so none is kept by hand. (docs/errors.md is
generated from the error catalog and committed: tests/unit/test_error_catalog.py keeps it
current.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # mkdocs loads this file by path, from its own script
    sys.path.insert(0, str(ROOT))

from scripts.docs import api_reference, settings_reference  # noqa: E402


def on_files(files: Files, config: Any) -> Files:
    document = api_reference.document()
    generated = {
        "configuration.md": settings_reference.render(),
        "api/reference.md": api_reference.render(document),
        "api/openapi.json": json.dumps(document, indent=1),
    }
    for path, content in generated.items():
        files.append(File.generated(config, path, content=content))
    return files
