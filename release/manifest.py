"""``BUNDLE/manifest.json``: what a release bundle holds, and the checks that refuse a bundle
that is not what its manifest says, before any model is loaded.

Fields a script can rely on:

* ``format_version`` (int, :data:`FORMAT_VERSION`),
* ``files``: ``[{path, sha256, bytes}]`` for every file of the bundle but the manifest,
* ``models``: ``{name: {file, inputs, outputs, normalisation, ...}}`` (``inputs``/``outputs``:
  ``[{name, shape, dtype}]``, ``"batch"`` the dynamic axis),
* ``class_names``, ``streams`` (the fused streams, in the head's order),
* ``recipe`` (the preprocessing recipe, whole) and ``recipe_hash``,
* ``temperatures`` (``fusion`` and per stream, from each run's ``calibration.json``; 1 where none),
* ``runs`` (each training run's identity: its directory and checkpoint hash), ``exported_by``
  (the exporting commit), ``fusion_head`` (the head's name and, for score-level fusion, its weights).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from core.errors import UserInputError
from core.storage import StorageError, atomic_write_json, config_hash, safe_child
from release.onnx_export import model_io

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(UserInputError, ValueError):
    """A release bundle that cannot be used (a file missing or changed, an unknown format): the
    message names the file."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Full SHA-256 (64 hex characters) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_records(bundle: str | os.PathLike) -> list[dict]:
    """``[{path, sha256, bytes}]`` of every file under ``bundle`` but the manifest, sorted by path
    (``/``-separated, relative to ``bundle``)."""
    root = Path(bundle)
    records = []
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = p.relative_to(root).as_posix()
        if rel != MANIFEST:
            records.append({"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return records


def write_manifest(bundle: str | os.PathLike, fields: dict[str, Any]) -> dict:
    """Write ``BUNDLE/manifest.json``: ``format_version``, ``fields`` (models, class names, recipe...)
    with ``recipe_hash`` added, and ``files`` (:func:`file_records`, so write every other file
    first). Returns the manifest."""
    manifest = {"format_version": FORMAT_VERSION, **fields, "recipe_hash": config_hash(fields.get("recipe", {})),
                "files": file_records(bundle)}
    atomic_write_json(Path(bundle) / MANIFEST, manifest)
    return manifest


def read_manifest(bundle: str | os.PathLike) -> dict:
    """``BUNDLE/manifest.json`` checked (:func:`validate_bundle`); :class:`BundleError` naming the
    file that is wrong."""
    root = Path(bundle)
    path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"{root}: not a release bundle directory (write one with tools/export.py)")
    if not path.is_file():
        raise BundleError(f"{path}: missing (not a release bundle; write one with tools/export.py)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    validate_bundle(root, manifest)
    return manifest


def validate_bundle(bundle: str | os.PathLike, manifest: dict) -> None:
    """Refuse (:class:`BundleError`) a bundle whose manifest has another ``format_version``, one of
    whose files is missing or has another size or sha256 than recorded, or one of whose ONNX
    models declares other inputs than the manifest. Reads every file once; loads no model."""
    root = Path(bundle)
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(f"{root / MANIFEST}: unknown format_version {version!r} (this code reads {FORMAT_VERSION}; "
                          "export the bundle again with this version's tools/export.py)")
    for key in ("files", "models", "class_names", "recipe"):
        if key not in manifest:
            raise BundleError(f"{root / MANIFEST}: no {key!r} field")
    for rec in manifest["files"]:
        if not (isinstance(rec, dict) and isinstance(rec.get("path"), str) and isinstance(rec.get("sha256"), str)
                and isinstance(rec.get("bytes"), int)):
            raise BundleError(f"{root / MANIFEST}: a files entry is not {{path, sha256, bytes}}: {rec!r}")
        try:
            path = safe_child(root, rec["path"])
        except StorageError:
            raise BundleError(f"{root / MANIFEST}: file path {rec['path']!r} points outside the bundle") from None
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle (the manifest lists it)")
        if path.stat().st_size != rec["bytes"] or sha256_file(path) != rec["sha256"]:
            raise BundleError(f"{path}: changed since export (sha256 differs from the manifest's); "
                              "the bundle is damaged or was edited")
    listed = {rec["path"] for rec in manifest["files"]}
    for name, model in manifest["models"].items():
        if model["file"] not in listed:
            raise BundleError(f"{root / MANIFEST}: model {name!r} file {model['file']} is not among the listed files")
        actual = model_io(root / model["file"])["inputs"]
        if actual != model["inputs"]:
            raise BundleError(f"{root / model['file']}: its inputs {actual} differ from the manifest's "
                              f"{model['inputs']}")
