"""``edge/manifest.json``: what a device needs to know about the exported files, and where they came from."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.anomaly import quantized_threshold
from edge.device.manifest import MANIFEST_FORMAT, MANIFEST_NAME
from edge.device.model import DECISION_RULE, EdgeModel
from edge.device.preprocessing import OUTPUT_FORMULA
from recipes.rundir import installed_versions

PACKAGES = ("tensorflow", "keras", "ai-edge-litert", "numpy", "tflite-micro")


def file_entry(path: Path) -> dict[str, Any]:
    """sha256 and size in bytes of one file."""
    content = path.read_bytes()
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def package_versions() -> dict[str, str]:
    """Python's version and those of the installed packages of :data:`PACKAGES`."""
    return installed_versions(PACKAGES)


def _variant_entry(name: str, model: EdgeModel) -> dict[str, Any]:
    """One variant's file and tensors; for an anomaly detector with an int8 output also the raw int8 value
    from which the output is an anomaly (what a microcontroller compares against)."""
    entry = {
        "file": f"model_{name}.tflite",
        "input": model.input.to_dict(),
        "output": model.output.to_dict(),
        "dynamic_batch": model.dynamic_batch,
    }
    if model.standardization is not None:
        entry["standardization"] = model.standardization.to_dict()
    if model.output_standardization is not None:
        entry["output_standardization"] = model.output_standardization.to_dict(OUTPUT_FORMULA)
    if model.failing:
        entry["failing"] = True
    if model.threshold is not None and model.output.quantized:
        entry["threshold_quantized"] = quantized_threshold(model.threshold, model.output.scale, model.output.zero_point)
    return entry


def build_manifest(
    folder: Path,
    run: dict[str, Any],
    data: dict[str, Any],
    models: dict[str, EdgeModel],
    export_options: dict[str, Any],
    task: str,
    anomaly: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest of an export folder; hashes every file in it (the bundle's ``lib/`` too) except the manifest.

    Args:
        folder: the (staging) folder holding the exported files.
        run: the source run: ``path``, ``name``, ``config`` (resolved), ``metrics`` and ``versions``.
        data: the run's ``data.json`` (class names, input shape, feature names, audio front end).
        models: variant name → the variant loaded in the runtime (for tensor shapes, dtypes and quantization).
        export_options: the options the export ran with (variants, calibration samples, float I/O).
        task: ``"classification"``, ``"anomaly"`` or ``"regression"``.
        anomaly: an anomaly run's ``threshold`` and ``threshold_rule`` (how training chose it).

    Returns:
        JSON-able data: ``files`` (name → sha256, bytes), ``variants`` (name → file, input, output, and for
        an int8 anomaly score ``threshold_quantized``), ``task``, ``anomaly`` (threshold, decision rule,
        threshold rule; None for a classifier), ``class_names``, ``input_shape``, ``front_end`` (the audio
        front end's parameters, None for other data), ``source_run``, ``export`` and ``versions``.
    """
    files = {
        path.relative_to(folder).as_posix(): file_entry(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST_NAME
    }
    return {
        "format": MANIFEST_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        "variants": {name: _variant_entry(name, model) for name, model in models.items()},
        "task": task,
        "anomaly": None
        if anomaly is None
        else {
            "threshold": anomaly["threshold"],
            "decision": DECISION_RULE,
            "threshold_rule": anomaly["threshold_rule"],
        },
        "class_names": list(data.get("class_names") or []),
        "target_names": data.get("target_names"),
        "input_shape": list(data.get("input_shape") or []),
        "feature_names": data.get("feature_names"),
        "front_end": data.get("front_end"),
        "raw_inputs": (
            "feed raw feature or pixel values (audio: the front end's MFCCs); a variant with "
            "'standardization' takes z-scores: apply it first (the runtime and the C header's "
            "_preprocess function do), the others normalize inside"
        ),
        "source_run": run,
        "export": export_options,
        "versions": package_versions(),
    }
