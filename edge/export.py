"""Export a trained run for devices: ``.tflite`` variants, parity, operators, C array, manifest.

:func:`export_run` is what ``python cli.py export`` calls. Everything is built in a hidden staging
folder inside the run and swapped in as ``edge/`` only at the end (an older ``edge/`` is replaced
whole), so a failure leaves the previous export or none, never half of one. With compression settings
(``--prune``, ``--qat``) the run's model is first fine-tuned by :mod:`edge.compress` and its int8 variant is
exported beside the plain int8 one, with its fine-tuning history.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.compress import CompressedModel, CompressionSettings, compress_model, history_csv
from edge.convert import calibration_samples as draw_calibration
from edge.convert import convert_model
from edge.manifest import build_manifest
from edge.micro import MicroCheck, c_array_sources, c_identifier, micro_check
from edge.operators import OperatorReport, operator_report
from edge.parity import Parity, measure_parity
from edge.runtime import MANIFEST_NAME, EdgeModel
from edge.variants import (
    COMPRESSED_VARIANTS,
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_VARIANTS,
    MIN_CALIBRATION_WARNING,
    VARIANTS,
    Variant,
    check_options,
)
from edge.weights import gzip_size, weight_sparsity
from recipes.errors import UserError, unknown_choice
from recipes.rundir import write_atomic, write_json

EDGE_DIR = "edge"
REPORT_NAME = "report.json"
MICRO_HEADER = "model_int8.h"
MICRO_SOURCE = "model_int8.cc"
EVALUATION_BATCH = 1024


@dataclass
class VariantResult:
    """One exported variant: its file, parity with Keras, operators, gzip size and weight sparsity."""

    name: str
    file: str
    bytes: int
    ratio_to_float32: float | None
    parity: Parity
    operators: OperatorReport
    gzip_bytes: int
    sparsity: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {"name": self.name, "file": self.file, "bytes": self.bytes, "ratio_to_float32": self.ratio_to_float32,
                "gzip_bytes": self.gzip_bytes, "sparsity": self.sparsity,
                **{key: value for key, value in self.parity.to_dict().items() if key != "variant"},
                **self.operators.to_dict()}


@dataclass
class ExportReport:
    """What an export wrote and measured."""

    run_dir: Path
    edge_dir: Path
    variants: list[VariantResult]
    keras_accuracy: float
    test_examples: int
    calibration: dict[str, Any]
    micro: MicroCheck | None
    micro_files: list[str]
    warnings: list[str] = field(default_factory=list)
    compression: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json`` (paths relative to the run)."""
        return {
            "run": str(self.run_dir),
            "split": "test",
            "test_examples": self.test_examples,
            "keras_accuracy": self.keras_accuracy,
            "variants": [variant.to_dict() for variant in self.variants],
            "calibration": self.calibration,
            "micro": self.micro.to_dict() if self.micro else None,
            "micro_files": self.micro_files,
            "warnings": self.warnings,
            "compression": self.compression,
        }


@dataclass
class _RunInputs:
    """What an export reads from a run."""

    model: Any
    config: Any
    data: dict[str, Any]
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    run_info: dict[str, Any]
    dataset: Any
    split: Any


def _read_run(run_dir: Path) -> _RunInputs:
    """Load a run's model, config, data description and the raw train and test examples."""
    from recipes.data import load_dataset
    from recipes.runs import load_model, read_config, read_json, read_metrics, require_run
    from recipes.splitting import load_split

    require_run(run_dir, "model.keras", "config.yaml", "data.json", "split.npz")
    config = read_config(run_dir)
    data = read_json(run_dir / "data.json")
    split = load_split(run_dir / "split.npz")
    dataset = load_dataset(config.data, config.label, config.image_size)
    if len(dataset.y) != data.get("examples") or max(int(part.max(initial=0)) for part in
                                                    (split.train, split.dev, split.test)) >= len(dataset.y):
        raise UserError(f"data {config.data} has {len(dataset.y)} examples but the run was trained on "
                        f"{data.get('examples')}; the data changed since training: train again")
    if len(split.test) == 0:
        raise UserError(f"{run_dir} has an empty test split; train again with a test fraction > 0")
    trained = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    run_info = {"path": str(run_dir.resolve()), "name": run_dir.name, "config": config.to_dict(),
                "metrics": read_metrics(run_dir) if (run_dir / "metrics.json").is_file() else None,
                "versions": trained.get("versions")}
    return _RunInputs(load_model(run_dir), config, data, dataset.x[split.train], dataset.x[split.test],
                      dataset.y[split.test], run_info, dataset, split)


def _compress(inputs: _RunInputs, settings: CompressionSettings,
              report: Callable[[str], None] | None) -> CompressedModel:
    """Fine-tune the run's model as ``settings`` asks, on the run's own split."""
    from edge.twin import data_spec_of
    from recipes.config import task_of
    from recipes.training import PreparedData

    spec = data_spec_of(inputs.model, inputs.dataset.input_shape, inputs.dataset.num_classes, len(inputs.split.train))
    task = inputs.data.get("task") or task_of(inputs.config.recipe)
    return compress_model(inputs.model, inputs.config, PreparedData(inputs.dataset, inputs.split, spec, task),
                          settings, report)


def export_run(run_dir: str | Path, variants: Sequence[str] = DEFAULT_VARIANTS,
               calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES, float_io: bool = False,
               compression: CompressionSettings | None = None,
               report: Callable[[str], None] | None = None) -> ExportReport:
    """Convert a run's model to ``.tflite`` variants and write ``edge/`` inside the run.

    ``edge/`` receives ``model_<variant>.tflite`` for each variant, ``report.json`` (parity with Keras
    on the test split, operators, TFLite Micro check, gzip size and weight sparsity), for int8
    ``model_int8.h``/``model_int8.cc``, and ``manifest.json`` (sha256 and size of each file, tensors,
    labels, source run, versions). With active ``compression`` also the compressed int8 variant
    (``model_int8_pruned.tflite``, ``model_int8_qat.tflite`` or ``model_int8_pruned_qat.tflite``, plain int8
    always beside it) and its fine-tuning history ``<variant>_history.csv``.

    Args:
        run_dir: a run directory written by ``python cli.py train``.
        variants: names from :data:`edge.variants.VARIANTS`.
        calibration_samples: training examples in int8's representative data set (seeded draw).
        float_io: give the int8 model float32 input and output instead of int8.
        compression: pruning and/or QAT to fine-tune with (see :class:`edge.compress.CompressionSettings`).
        report: called with the fine-tuning's progress lines; None for silence.

    Returns:
        The report, also written to ``edge/report.json``.

    Raises:
        UserError: an unknown variant, impossible options, a run that is missing or damaged, or a model
            compression cannot handle.
    """
    for name in variants:
        if name not in VARIANTS:
            raise unknown_choice("variant", name, VARIANTS)
    compressing = compression is not None and compression.active
    if compressing:
        compression.check()
    names = [name for name in VARIANTS if name in variants or (compressing and name == "int8")]
    if not names:
        raise UserError(f"no variant chosen; give --quantization with some of {', '.join(VARIANTS)}")
    check_options(names, calibration_samples, float_io)
    run_dir = Path(run_dir)
    inputs = _read_run(run_dir)
    compressed = _compress(inputs, compression, report) if compressing else None
    warnings: list[str] = []
    calibration = None
    if any(VARIANTS[name].full_integer for name in names):
        calibration = draw_calibration(inputs.x_train, calibration_samples, inputs.config.seed)
        exhausted = len(calibration) < calibration_samples
        if len(calibration) < MIN_CALIBRATION_WARNING:
            source = "the whole training split" if exhausted else "a sample of the training split"
            fix = "train on more data" if exhausted else "give --calibration-samples 300 or more"
            warnings.append(f"int8 is calibrated on {len(calibration)} examples ({source}, fewer than "
                            f"{MIN_CALIBRATION_WARNING}): its activation ranges may be off; {fix}")
        elif exhausted:
            warnings.append(f"the training split holds only {len(calibration)} examples; int8 is calibrated on "
                            "all of them")
    keras_outputs = np.asarray(inputs.model.predict(inputs.x_test, batch_size=EVALUATION_BATCH, verbose=0))
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".edge-staging-"))
    try:
        result = _build(staging, run_dir, names, inputs, keras_outputs, calibration, float_io, warnings,
                        (compression, compressed) if compressed is not None else None)
        result.edge_dir = _swap_in(staging, run_dir / EDGE_DIR)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result


def _build(staging: Path, run_dir: Path, names: list[str], inputs: _RunInputs, keras_outputs: np.ndarray,
           calibration: np.ndarray | None, float_io: bool, warnings: list[str],
           compressed: tuple[CompressionSettings, CompressedModel] | None = None) -> ExportReport:
    """Write every file of the export into ``staging`` and return the report."""
    class_names = list(inputs.data.get("class_names") or [])
    models: dict[str, EdgeModel] = {}
    results: list[VariantResult] = []
    targets: list[tuple[Variant, Any]] = [(VARIANTS[name], inputs.model) for name in names]
    if compressed is not None:
        targets.append((COMPRESSED_VARIANTS[compressed[0].variant_name], compressed[1].model))
    for variant, model in targets:
        name = variant.name
        content = convert_model(model, variant, calibration, float_io and "float_io" in variant.options)
        write_atomic(staging / variant.filename, content)
        models[name] = EdgeModel(content, class_names, source=variant.filename)
        parity = measure_parity(models[name], variant, inputs.x_test, inputs.y_test, keras_outputs)
        operators = operator_report(content, variant.full_integer)
        results.append(VariantResult(name, variant.filename, len(content), None, parity, operators,
                                     gzip_size(content), weight_sparsity(content)))
        if not parity.within_tolerance:
            warnings.append(f"{name} is outside its tolerance: max |diff| {parity.max_abs_diff:.2e} (limit "
                            f"{variant.max_abs_diff:g}), accuracy drop {parity.accuracy_drop_points:.2f} points "
                            f"(limit {variant.max_accuracy_drop:g})")
        if operators.micro_int8_unsupported:
            warnings.append(f"{name} uses {', '.join(operators.micro_int8_unsupported)}, for which TFLite Micro has "
                            "no int8 kernel: it will not run on a microcontroller; change the model (e.g. "
                            "--set activation=relu) or run it with LiteRT")
    float_bytes = next((result.bytes for result in results if result.name == "float32"), None)
    for result in results:
        result.ratio_to_float32 = result.bytes / float_bytes if float_bytes else None
    micro, micro_files = None, []
    if "int8" in models:
        unsupported = next(result.operators.micro_int8_unsupported for result in results if result.name == "int8")
        micro = (MicroCheck(False, f"not run on TFLite Micro: it has no int8 kernel for {', '.join(unsupported)}")
                 if unsupported else micro_check(models["int8"], inputs.x_test))
        micro_files = _write_micro(staging, run_dir.name, models["int8"], micro)
    report = ExportReport(run_dir, staging, results, results[0].parity.keras_accuracy, len(inputs.y_test),
                          {"samples": 0 if calibration is None else len(calibration), "split": "train",
                           "seed": inputs.config.seed, "float_io": float_io},
                          micro, micro_files, warnings)
    if compressed is not None:
        settings, model = compressed
        history = f"{settings.variant_name}_history.csv"
        write_atomic(staging / history, history_csv(model.history))
        report.compression = {"variant": settings.variant_name, "settings": settings.to_dict(), **model.to_dict(),
                              "history": history}
    write_json(staging / REPORT_NAME, report.to_dict())
    write_json(staging / MANIFEST_NAME, build_manifest(
        staging, inputs.run_info, inputs.data, models,
        {"variants": list(models), "calibration": report.calibration, "parity_split": "test",
         "compression": compressed[0].to_dict() if compressed is not None else None},
    ))
    return report


def _write_micro(staging: Path, run_name: str, model: EdgeModel, micro: MicroCheck) -> list[str]:
    """Write ``model_int8.h`` and ``model_int8.cc`` for TFLite Micro; return their names."""
    notes = [f"Source run: {run_name}. Input {list(model.input.shape)} {model.input.dtype}, "
             f"output {list(model.output.shape)} {model.output.dtype}."]
    for role, tensor in (("input", model.input), ("output", model.output)):
        if tensor.quantized:
            shift = f"- {tensor.zero_point}" if tensor.zero_point >= 0 else f"+ {-tensor.zero_point}"
            notes.append(f"{role} quantization: real = (q {shift}) * {tensor.scale!r}")
    notes.append(micro.note)
    header, source = c_array_sources(model.content, c_identifier(run_name), MICRO_HEADER, notes)
    write_atomic(staging / MICRO_HEADER, header)
    write_atomic(staging / MICRO_SOURCE, source)
    return [MICRO_HEADER, MICRO_SOURCE]


def _swap_in(staging: Path, target: Path) -> Path:
    """Rename ``staging`` to ``target``; an existing ``target`` is moved aside first and deleted after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            with contextlib.suppress(OSError):
                os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
