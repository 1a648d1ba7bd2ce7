"""`exports/<id>/manifest.json`: what an export holds, and the list of exports for the Chat screen.

Written last, once every file is complete: an export directory with a manifest is whole. Sizes
and sha256 digests let a user check a copied GGUF (`sha256sum`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import atomic_write_text

MANIFEST_FILE = "manifest.json"
HASH_CHUNK = 4 * 2**20


@dataclass(frozen=True)
class ExportedFile:
    """One GGUF of an export."""

    quant: str
    file: str
    """File name, relative to the export directory."""
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    """The contents of `manifest.json`."""

    id: str
    run_id: str
    checkpoint: str
    """`best`, `last` or `step-<N>`."""
    base_model: str
    files: tuple[ExportedFile, ...]
    checkpoint_step: int | None = None
    eval_loss: float | None = None
    merged_dir: str = ""
    """The merged Hugging Face model, relative to the export directory ('' when not kept)."""
    chat_template_source: str = ""
    created_at: float = field(default_factory=time.time)
    duration_s: float = 0.0

    @property
    def quants(self) -> tuple[str, ...]:
        return tuple(item.quant for item in self.files)

    def path_of(self, export_dir: Path, quant: str) -> Path | None:
        """The GGUF of `quant` in this export, or None."""
        for item in self.files:
            if item.quant == quant:
                return export_dir / item.file
        return None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_file(export_dir: Path, path: Path, quant: str) -> ExportedFile:
    """The manifest entry of a finished GGUF."""
    return ExportedFile(quant, path.name, path.stat().st_size, sha256_of(path))


def write_manifest(export_dir: Path, manifest: ExportManifest) -> Path:
    """Write `manifest.json` atomically (readable by all, like the GGUFs); its path."""
    target = export_dir / MANIFEST_FILE
    atomic_write_text(target, json.dumps(manifest_dict(manifest), indent=2) + "\n")
    umask = os.umask(0)
    os.umask(umask)
    target.chmod(0o666 & ~umask)
    return target


def read_manifest(export_dir: Path) -> ExportManifest | None:
    """The export's manifest; None when it is missing, unreadable or of another shape."""
    try:
        data = json.loads((export_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        files = tuple(ExportedFile(**item) for item in data.pop("files"))
        return ExportManifest(files=files, **data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


@dataclass(frozen=True)
class ExportedGGUF:
    """A GGUF from the workspace's exports, as the Chat screen lists it."""

    path: Path
    export_id: str
    run_id: str
    checkpoint: str
    quant: str
    bytes: int
    created_at: float

    @property
    def label(self) -> str:
        """`20261127-2335-3fa9 best q4_k_m (1.0 GB)`."""
        return f"{self.run_id} {self.checkpoint} {self.quant} ({_size(self.bytes)})"


def list_exported_ggufs(exports_dir: Path) -> list[ExportedGGUF]:
    """Every GGUF of every complete export, newest export first, smaller files first."""
    found: list[ExportedGGUF] = []
    if not exports_dir.is_dir():
        return found
    for export_dir in exports_dir.iterdir():
        manifest = read_manifest(export_dir) if export_dir.is_dir() else None
        if manifest is None:
            continue
        for item in manifest.files:
            path = export_dir / item.file
            if path.is_file():
                found.append(_entry(manifest, item, path))
    return sorted(found, key=lambda entry: (-entry.created_at, entry.bytes))


def _entry(manifest: ExportManifest, item: ExportedFile, path: Path) -> ExportedGGUF:
    return ExportedGGUF(
        path=path,
        export_id=manifest.id,
        run_id=manifest.run_id,
        checkpoint=manifest.checkpoint,
        quant=item.quant,
        bytes=item.bytes,
        created_at=manifest.created_at,
    )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def manifest_dict(manifest: ExportManifest) -> dict[str, Any]:
    """The manifest as plain JSON data (for `--json` output)."""
    data = asdict(manifest)
    data["files"] = [asdict(item) for item in manifest.files]
    return data
