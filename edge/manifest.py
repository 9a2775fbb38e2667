"""``edge/manifest.json``: what a device needs to know about the exported files, and where they came from."""

from __future__ import annotations

import hashlib
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from edge.runtime import MANIFEST_NAME, EdgeModel

MANIFEST_FORMAT = 1
PACKAGES = ("tensorflow", "keras", "ai-edge-litert", "numpy", "tflite-micro")


def file_entry(path: Path) -> dict[str, Any]:
    """sha256 and size in bytes of one file."""
    content = path.read_bytes()
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def package_versions() -> dict[str, str]:
    """Python's version and those of the installed packages of :data:`PACKAGES`."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def build_manifest(folder: Path, run: dict[str, Any], data: dict[str, Any], models: dict[str, EdgeModel],
                   export_options: dict[str, Any]) -> dict[str, Any]:
    """The manifest of an export folder; hashes every file in it except the manifest itself.

    Args:
        folder: the (staging) folder holding the exported files.
        run: the source run: ``path``, ``name``, ``config`` (resolved), ``metrics`` and ``versions``.
        data: the run's ``data.json`` (class names, input shape, feature names).
        models: variant name → the variant loaded in the runtime (for tensor shapes, dtypes and quantization).
        export_options: the options the export ran with (variants, calibration samples, float I/O).

    Returns:
        JSON-able data: ``files`` (name → sha256, bytes), ``variants`` (name → file, input, output),
        ``class_names``, ``input_shape``, ``source_run``, ``export`` and ``versions``.
    """
    files = {path.name: file_entry(path) for path in sorted(folder.iterdir())
             if path.is_file() and path.name != MANIFEST_NAME}
    return {
        "format": MANIFEST_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        "variants": {
            name: {"file": f"model_{name}.tflite", "input": model.input.to_dict(), "output": model.output.to_dict(),
                   "dynamic_batch": model.dynamic_batch}
            for name, model in models.items()
        },
        "class_names": list(data.get("class_names") or []),
        "input_shape": list(data.get("input_shape") or []),
        "feature_names": data.get("feature_names"),
        "raw_inputs": "the models normalize inside; feed raw feature or pixel values",
        "source_run": run,
        "export": export_options,
        "versions": package_versions(),
    }
