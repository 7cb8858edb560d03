"""The file an org's export writes and its import reads (docs/operations/export.md).

A gzipped tar of JSON files and a manifest, written last:

    platform.json              the org, members (by email), settings and their history,
                               webhook endpoints (no secrets)
    audit.jsonl                the audit trail, oldest first
    tables/<schema.table>.jsonl  the org's rows, one JSON object per line
    documents/<name>.jsonl     each collection's documents, canonical Extended JSON
    cache.jsonl                cache keys: Redis's serialization and the time left to live
    manifest.json              format, version, the schema's migration, the org, and the
                               SHA-256 and line count of every other file

Reading checks everything before anything is imported: the format and version, the
schema (an archive of a newer schema than this deployment's is refused), and every file
against the manifest (none missing, none added, none altered). Checksums find an archive
cut short or damaged; they do not prove who made it (keep archives where only operators
write, or sign them yourself).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from orgbase.core.errors import Invalid

FORMAT = "orgbase-org-archive"
VERSION = 1
MANIFEST = "manifest.json"


def archive_invalid(why: str) -> Invalid:
    return Invalid(f"not a usable org archive: {why}", code="archive_invalid")


@dataclass
class ArchiveWriter:
    """Collects an archive's files, then writes them with their manifest."""

    files: dict[str, bytes] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add_json(self, name: str, value: Any) -> None:
        self.files[name] = msgspec.json.encode(value)
        self.counts[name] = 1

    def add_lines(self, name: str, lines: list[str] | list[bytes]) -> None:
        encoded = [line.encode() if isinstance(line, str) else line for line in lines]
        self.files[name] = b"".join(line + b"\n" for line in encoded)
        self.counts[name] = len(encoded)

    def write(self, path: Path, header: dict[str, Any]) -> dict[str, Any]:
        manifest = {
            **header,
            "format": FORMAT,
            "version": VERSION,
            "files": {
                name: {"sha256": hashlib.sha256(data).hexdigest(), "lines": self.counts[name]}
                for name, data in sorted(self.files.items())
            },
        }
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for name, data in [*self.files.items(), (MANIFEST, msgspec.json.encode(manifest))]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        partial.replace(path)  # a reader never sees a half-written archive under its name
        return manifest


@dataclass(frozen=True)
class Archive:
    manifest: dict[str, Any]
    files: dict[str, bytes]

    def json(self, name: str) -> Any:
        return msgspec.json.decode(self.files[name])

    def lines(self, name: str) -> list[bytes]:
        return self.files[name].splitlines()

    def names(self, folder: str) -> list[str]:
        """The files of a folder, without the folder and the ``.jsonl``."""
        start = folder + "/"
        return sorted(n[len(start) : -len(".jsonl")] for n in self.files if n.startswith(start))


def read_archive(path: Path, schema_version: str) -> Archive:
    """The archive at ``path``, checked whole (``archive_invalid``, ``archive_version``)."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    raise archive_invalid(f"{member.name} is not a file")
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise archive_invalid(f"cannot be read ({exc})") from None
    if MANIFEST not in files:
        raise archive_invalid("no manifest (cut short?)")
    try:
        manifest = msgspec.json.decode(files.pop(MANIFEST))
    except msgspec.DecodeError:
        raise archive_invalid("the manifest is not JSON") from None
    _check_version(manifest, schema_version)
    listed = manifest.get("files") or {}
    if set(listed) != set(files):
        missing = sorted(set(listed) - set(files))
        extra = sorted(set(files) - set(listed))
        raise archive_invalid(f"files missing {missing} or not in the manifest {extra}")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != listed[name].get("sha256"):
            raise archive_invalid(f"{name} does not match its checksum")
    return Archive(manifest, files)


def _check_version(manifest: Any, schema_version: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise archive_invalid("not an orgbase org archive")
    if manifest.get("version") != VERSION:
        raise Invalid(
            f"archive format {manifest.get('version')!r}; this release reads {VERSION}",
            code="archive_version",
        )
    theirs = str(manifest.get("schema", ""))
    if not theirs.isdigit() or int(theirs) > int(schema_version):
        raise Invalid(
            f"the archive is of schema {theirs!r}, newer than this deployment's"
            f" {schema_version}: migrate this deployment first",
            code="archive_version",
        )
