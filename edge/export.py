"""Export a trained run for devices: ``.tflite`` variants, parity, operators, C array, manifest.

:func:`export_run` is what ``python cli.py export`` calls. Everything is built in a hidden staging
folder inside the run and swapped in as ``edge/`` only at the end (an older ``edge/`` is replaced
whole, in one atomic exchange where the system has one), so a failure or a kill leaves the previous export or
the new one, never half of one; staging folders a kill left in the run are removed by the next export. With
compression settings (``--prune``, ``--qat``) the run's model is first fine-tuned by :mod:`edge.compress` and its
int8 variant is exported beside the plain int8 one, with its own C array and its fine-tuning history. An
anomaly-detection run is judged by AUC and by its decisions at the threshold, and its int8 calibration adds the
dev examples scoring near the threshold (:mod:`edge.anomaly`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.analyze import CycleCosts, analyze_model
from edge.anomaly import SCORE_SPAN, borderline_examples, threshold_warning
from edge.bundle import write_bundle
from edge.compress import CompressedModel, CompressionSettings, compress_model, history_csv
from edge.convert import calibration_samples as draw_calibration
from edge.convert import convert_for_device, convert_model, split_standardization
from edge.device.errors import UserError, unknown_choice
from edge.device.manifest import MANIFEST_NAME
from edge.device.model import EdgeModel
from edge.device.tasks import TASKS
from edge.export_report import CompressionReport, ExportReport, VariantResult
from edge.firmware import FOLDER as FIRMWARE_FOLDER
from edge.firmware import write_run_firmware
from edge.manifest import build_manifest
from edge.micro import MicroCheck, micro_available, micro_check, write_c_array
from edge.operators import operator_report
from edge.parity import AnomalyParity, Parity, RegressionParity
from edge.per_tensor import narrow_against_keras
from edge.quantization_report import EXAMPLES as QUANTIZATION_EXAMPLES
from edge.quantization_report import LayerError, layer_errors
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
from recipes.records import keras_inputs, take
from recipes.rundir import (
    check_writable,
    owned_prefix,
    remove_stale,
    replace_folder,
    temp_folder,
    write_atomic,
    write_json,
)

# Test examples run one at a time on the TFLite Micro host interpreter (a slow, exact reference).
MICRO_EXAMPLES = 1000

EDGE_DIR = "edge"
STAGING_PREFIX = f".{EDGE_DIR}-staging-"  # an export is built in a hidden folder of the run named so
REPORT_NAME = "report.json"
QUANTIZATION_REPORT_NAME = "quantization.json"
MICRO_VARIANTS = ("int8", *COMPRESSED_VARIANTS)  # full-integer variants written out as C arrays for TFLite Micro


@dataclass
class _RunInputs:
    """What an export reads from a run (``y`` as the run's task learns them: class indices, 0/1 normal/anomaly
    labels, or a regression's targets)."""

    model: Any
    config: Any
    data: dict[str, Any]
    x_train: np.ndarray
    x_dev: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    run_info: dict[str, Any]
    dataset: Any
    split: Any
    task: Any  # recipes.tasks.Task
    anomaly: dict[str, Any] | None  # threshold and threshold_rule of an anomaly run

    @property
    def threshold(self) -> float | None:
        """An anomaly run's threshold; None for a classifier."""
        return None if self.anomaly is None else self.anomaly["threshold"]


def _read_run(run_dir: Path) -> _RunInputs:
    """Load a run's model, config, data description, task and the raw train, dev and test examples."""
    from recipes.data import load_config_data
    from recipes.runs import Run
    from recipes.tasks import ANOMALY, choose_task, task_named

    run = Run(run_dir).require(Run.MODEL, Run.CONFIG, Run.DATA, Run.SPLIT)
    config = run.config()
    data = run.data()
    split = run.split()
    dataset = load_config_data(config)
    if len(dataset.y) != data.get("examples") or max(
        int(part.max(initial=0)) for part in (split.train, split.dev, split.test)
    ) >= len(dataset.y):
        raise UserError(
            f"data {config.data} has {len(dataset.y)} examples but the run was trained on "
            f"{data.get('examples')}; the data changed since training: train again"
        )
    if len(split.test) == 0:
        raise UserError(f"{run_dir} has an empty test split; train again with a test fraction > 0")
    trained = run.info()
    metrics = run.metrics() if run.has(Run.METRICS) else None
    run_info = {
        "path": str(run_dir.resolve()),
        "name": run_dir.name,
        "config": config.to_dict(),
        "metrics": metrics,
        "versions": trained.get("versions"),
    }
    task = task_named(data["task"]) if isinstance(data.get("task"), str) else choose_task(config, dataset)[0]
    dataset = task.prepare(dataset, config)
    anomaly = None
    if task.name == ANOMALY:
        if not isinstance(metrics, dict) or not isinstance(metrics.get("threshold"), int | float):
            raise UserError(
                f"{run_dir} is an anomaly-detection run without a threshold in metrics.json; "
                "train it again with 'python cli.py train'"
            )
        anomaly = {"threshold": float(metrics["threshold"]), "threshold_rule": metrics.get("threshold_rule")}
        if len(set(dataset.y[split.test].tolist())) < 2:
            raise UserError(
                f"the test split of {run_dir} holds only one kind of example; comparing AUC and "
                "decisions needs normal and anomalous ones: train again with a larger test fraction"
            )
    return _RunInputs(
        run.model(),
        config,
        data,
        take(dataset.x, split.train),
        take(dataset.x, split.dev),
        take(dataset.x, split.test),
        dataset.y[split.test],
        run_info,
        dataset,
        split,
        task,
        anomaly,
    )


def _compress(
    inputs: _RunInputs, settings: CompressionSettings, progress: Callable[[str], None] | None
) -> CompressedModel:
    """Fine-tune the run's model as ``settings`` asks, on the run's own split."""
    from edge.twin import data_spec_of
    from recipes.input_pipeline import PreparedData

    spec = data_spec_of(inputs.model, inputs.dataset.input_shape, inputs.dataset.num_classes, len(inputs.split.train))
    return compress_model(
        inputs.model, inputs.config, PreparedData(inputs.dataset, inputs.split, spec, inputs.task), settings, progress
    )


def export_run(
    run_dir: str | Path,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    *,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    float_io: bool = False,
    compression: CompressionSettings | None = None,
    progress: Callable[[str], None] | None = None,
    keep_failing: bool = False,
    per_tensor: bool = True,
    costs: CycleCosts | None = None,
    firmware: bool = False,
) -> ExportReport:
    """Convert a run's model to ``.tflite`` variants and write ``edge/`` inside the run.

    ``edge/`` receives ``model_<variant>.tflite`` for each variant within its tolerance, ``report.json``
    (parity with Keras on the test split, operators, TFLite Micro check, gzip size and weight sparsity, and
    the figures of any variant outside its tolerance), ``quantization.json`` (per full-integer variant, the
    error of every int8 activation against the float model's, worst first: :mod:`edge.quantization_report`),
    for int8 ``model_int8.h``/``model_int8.cc`` (the C array and the C function that turns a raw example into
    the model's input), and ``manifest.json`` (sha256 and size of each file, tensors, the z-score a
    full-integer model needs in front of it, task with labels or threshold, audio front end, source run,
    versions), and the device bundle (:mod:`edge.bundle`: ``lib/`` with the runtime, ``predict.py`` and
    ``requirements.txt``). A full-integer variant is converted without the model's z-score layer and takes z-scored
    inputs
    (:mod:`edge.device.preprocessing`): raw features in mixed units share no useful int8 scale. Parity is by
    accuracy for a classifier, by AUC and decisions at the threshold for an anomaly detector. With active
    ``compression`` also the compressed int8 variant (``model_int8_pruned.tflite``, ``model_int8_qat.tflite``
    or ``model_int8_pruned_qat.tflite``, plain int8 always beside it), checked on TFLite Micro and written as
    a C array like int8, and its fine-tuning history ``<variant>_history.csv``.

    A variant outside its tolerance is not written (its figures stay in the report, ``report.failing`` names
    it) unless ``keep_failing``, which writes it marked as failing in the manifest. When no variant is within
    its tolerance, nothing is written and an earlier ``edge/`` stays as it was (``report.edge_dir`` is None).

    Args:
        run_dir: a run directory written by ``python cli.py train``.
        variants: names from :data:`edge.variants.VARIANTS`.
        calibration_samples: training examples in int8's representative data set (seeded, stratified by class);
            an anomaly run adds up to as many dev examples scoring near its threshold (:mod:`edge.anomaly`).
        float_io: give the int8 model float32 input and output instead of int8.
        compression: pruning and/or QAT to fine-tune with (see :class:`edge.compress.CompressionSettings`).
        progress: called with the fine-tuning's progress lines; None for silence.
        keep_failing: write variants outside their tolerance too, marked as failing.
        per_tensor: let full-integer variants quantize a layer's weights per tensor instead of per output channel
            where that keeps the model as faithful on the calibration examples and within tolerance on the test
            split (:mod:`edge.per_tensor`: smaller files); False keeps every layer per-channel.
        costs: a target's cycles per MAC of int8 kernels: each full-integer variant's latency on it is estimated
            from its operators (:func:`edge.analyze.analyze_model`) into ``report.json``; None estimates none.
        firmware: also write ``edge/firmware/``, the int8 model with batch 1 as a C/C++ library for TFLite Micro
            with its front end in C, build files and an example running test examples (:mod:`edge.firmware`).

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
    if firmware and ("int8" not in names or float_io):
        raise UserError(
            "--firmware packages the int8 model with int8 input and output: add int8 to --quantization "
            "and leave out --float-io"
        )
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        check_writable(run_dir, "the run")
        for prefix in (STAGING_PREFIX, f".{EDGE_DIR}-old-"):  # what exports killed in this run left behind
            remove_stale(run_dir, prefix)
    inputs = _read_run(run_dir)
    compressed = _compress(inputs, compression, progress) if compressing else None
    warnings: list[str] = []
    calibration, calibration_info = None, {"samples": 0, "split": "train"}
    if any(VARIANTS[name].full_integer for name in names):
        calibration, calibration_info = _calibration(inputs, calibration_samples, warnings)
    calibration_info.update(seed=inputs.config.seed, float_io=float_io)
    keras_outputs = np.asarray(inputs.model.predict(**keras_inputs(inputs.x_test), verbose=0))
    staging = temp_folder(run_dir, prefix=owned_prefix(STAGING_PREFIX))
    try:
        result = _build(
            staging,
            run_dir,
            names,
            inputs,
            keras_outputs,
            (calibration, calibration_info),
            float_io,
            warnings,
            (compression, compressed) if compressed is not None else None,
            keep_failing,
            per_tensor,
            costs,
            firmware,
        )
        result.edge_dir = _swap_in(staging, run_dir / EDGE_DIR) if result.written else None
        if result.firmware is not None and result.edge_dir is not None:  # it was written in the staging folder
            result.firmware.folder = result.edge_dir / FIRMWARE_FOLDER
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if result.written:
        from recipes.report_page import write_report

        write_report(run_dir)
    return result


def _calibration(inputs: _RunInputs, count: int, warnings: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """int8's representative data and its description for ``report.json``; warns (into ``warnings``) when
    the training draw is small. The draw is stratified by class; an anomaly run adds the dev examples scoring
    near its threshold."""
    strata = inputs.task.strata(inputs.dataset.y[inputs.split.train])  # classes, or deciles of a target
    calibration = draw_calibration(inputs.x_train, count, inputs.config.seed, strata)
    exhausted = len(calibration) < count
    if len(calibration) < MIN_CALIBRATION_WARNING:
        source = "the whole training split" if exhausted else "a sample of the training split"
        fix = "train on more data" if exhausted else "give --calibration-samples 300 or more"
        warnings.append(
            f"int8 is calibrated on {len(calibration)} examples ({source}, fewer than "
            f"{MIN_CALIBRATION_WARNING}): its activation ranges may be off; {fix}"
        )
    elif exhausted:
        warnings.append(f"the training split holds only {len(calibration)} examples; int8 is calibrated on all of them")
    if inputs.threshold is None:
        return calibration, {"samples": len(calibration), "split": "train", "stratified": inputs.task.strata_name}
    dev_scores = inputs.model.predict(**keras_inputs(inputs.x_dev), verbose=0)
    borderline = borderline_examples(inputs.x_dev, dev_scores, inputs.threshold, count, inputs.config.seed)
    return np.concatenate([calibration, borderline]), {
        "samples": len(calibration) + len(borderline),
        "split": "train+dev",
        "train_samples": len(calibration),
        "dev_samples": len(borderline),
        "dev_score_range": [inputs.threshold, SCORE_SPAN * inputs.threshold],
    }


def _targets(
    names: list[str], inputs: _RunInputs, compressed: tuple[CompressionSettings, CompressedModel] | None
) -> list[tuple[Variant, Any, Any]]:
    """Each variant with the Keras model it is converted from, the z-score in front of it and the scaling after it:
    full-integer variants take the model after its z-score layer (and before a regression's output scaling),
    float variants the whole model (raw inputs, outputs in target units)."""
    split = split_standardization(inputs.model)
    targets = []
    for name in names:
        variant = VARIANTS[name]
        parts = split if variant.full_integer and split is not None else (inputs.model, None, None)
        targets.append((variant, *parts))
    if compressed is not None:
        settings, model = compressed
        targets.append((COMPRESSED_VARIANTS[settings.variant_name], model.model, model.standardization, None))
    return targets


def _build(
    staging: Path,
    run_dir: Path,
    names: list[str],
    inputs: _RunInputs,
    keras_outputs: np.ndarray,
    calibration: tuple[np.ndarray | None, dict[str, Any]],
    float_io: bool,
    warnings: list[str],
    compressed: tuple[CompressionSettings, CompressedModel] | None = None,
    keep_failing: bool = False,
    per_tensor: bool = True,
    costs: CycleCosts | None = None,
    firmware: bool = False,
) -> ExportReport:
    """Write every file of the export into ``staging`` and return the report."""
    representative, calibration_info = calibration
    models: dict[str, EdgeModel] = {}
    results: list[VariantResult] = []
    layers: dict[str, list[LayerError]] = {}
    failing: dict[str, str] = {}
    for variant, model, standardization, output in _targets(names, inputs, compressed):
        name = variant.name
        content, standardization, _ = convert_for_device(
            model, variant, representative, float_io and "float_io" in variant.options, standardization
        )
        narrowing = None
        if variant.full_integer and per_tensor and not variant.per_channel_trained:
            narrowing = narrow_against_keras(content, model, representative, standardization)
        edge_model = parity = None
        if narrowing is not None and narrowing.per_tensor:
            edge_model, parity = _measured(narrowing.content, variant, standardization, output, inputs, keras_outputs)
            if parity.within_tolerance:
                content = narrowing.content
            else:  # as faithful on calibration examples, not on the test split: ship per-channel
                narrowing.fell_back, edge_model = True, None
        if edge_model is None:
            edge_model, parity = _measured(content, variant, standardization, output, inputs, keras_outputs)
        operators = operator_report(content, variant.full_integer)
        estimating = costs is not None and variant.full_integer  # the targets' cycles per MAC are of int8 kernels
        latency = analyze_model(content, costs, variant.filename).latency_ms if estimating else None
        results.append(
            VariantResult(
                name,
                variant.filename,
                len(content),
                None,
                parity,
                operators,
                gzip_size(content),
                weight_sparsity(content),
                narrowing,
                latency,
                costs.target if estimating else None,
            )
        )
        if variant.full_integer:
            layers[name] = _layer_errors(model, standardization, edge_model, inputs.x_test)
        if not parity.within_tolerance:
            failing[name] = parity.shortfall()
            edge_model.failing = True
            if not keep_failing:
                continue
        write_atomic(staging / variant.filename, content)
        models[name] = edge_model
        outside = threshold_warning(name, content, inputs.threshold) if inputs.threshold is not None else None
        if outside is not None:
            warnings.append(outside)
        if operators.micro_int8_unsupported:
            warnings.append(
                f"{name} uses {', '.join(operators.micro_int8_unsupported)}, for which TFLite Micro has "
                "no int8 kernel: it will not run on a microcontroller; change the model (e.g. "
                "--set activation=relu) or run it with LiteRT"
            )
    _confusion_figures(staging, results)
    float_bytes = next((result.bytes for result in results if result.name == "float32"), None)
    for result in results:
        result.ratio_to_float32 = result.bytes / float_bytes if float_bytes else None
    micro_checks = {
        result.name: _micro(staging, run_dir.name, result, models[result.name], inputs.x_test)
        for result in results
        if result.name in MICRO_VARIANTS and result.name in models
    }
    unsupported = {result.name: result.operators.micro_int8_unsupported for result in results}
    for name, (check, _) in micro_checks.items():
        if micro_available() and not check.measured and not unsupported[name]:  # it ran nowhere: say so
            warnings.append(f"{name}: {check.note}; it may not run on a microcontroller")
    micro, micro_files = micro_checks.get("int8", (None, []))
    report = ExportReport(
        run_dir,
        staging,
        results,
        inputs.task.name,
        results[0].parity.keras_summary(),
        len(inputs.y_test),
        calibration_info,
        micro,
        micro_files,
        warnings,
    )
    report.layers, report.failing, report.written = layers, failing, bool(models)
    report.kept_failing = keep_failing
    if firmware and "int8" in models:
        sources = getattr(inputs.dataset, "sources", None)
        report.firmware = write_run_firmware(
            staging,
            run_dir.name,
            models["int8"],
            inputs.task.name,
            inputs.data.get("front_end"),
            inputs.x_test,
            None if sources is None else [sources[int(index)] for index in inputs.split.test],
            MICRO_EXAMPLES,
        )
    elif firmware:
        warnings.append("no firmware written: the int8 model is outside its tolerance (--keep-failing writes it)")
    if compressed is not None:
        settings, model = compressed
        history = f"{settings.variant_name}_history.csv"
        write_atomic(staging / history, history_csv(model.history))
        compressed_micro, compressed_files = micro_checks.get(
            settings.variant_name, (MicroCheck(False, "not written: outside its tolerance"), [])
        )
        report.compression = CompressionReport(
            settings.variant_name, settings, model, history, compressed_micro, compressed_files
        )
    if layers:
        write_json(
            staging / QUANTIZATION_REPORT_NAME,
            {
                "description": "per full-integer variant, each int8 activation against the float model's on the test "
                "split, worst first (edge/quantization_report.py)",
                "variants": {name: [row.to_dict() for row in rows] for name, rows in layers.items()},
            },
        )
    write_json(staging / REPORT_NAME, report.to_dict())
    write_bundle(staging)
    write_json(
        staging / MANIFEST_NAME,
        build_manifest(
            staging,
            inputs.run_info,
            inputs.data,
            models,
            {
                "variants": list(models),
                "calibration": report.calibration,
                "parity_split": "test",
                "compression": compressed[0].to_dict() if compressed is not None else None,
            },
            inputs.task.name,
            inputs.anomaly,
        ),
    )
    return report


def _confusion_figures(staging: Path, results: list[VariantResult]) -> None:
    """For each variant with per-class results (a classifier, an anomaly detector's decisions), the Keras model's
    test-split confusion matrix beside the variant's, cells whose counts differ outlined (``plots/`` of ``edge/``)."""
    from recipes.plots import plot_confusion_pair
    from recipes.runs import Run

    for result in results:
        parity = result.parity
        classes, keras = getattr(parity, "classes", None), getattr(parity, "keras_classes", None)
        if not classes or not keras:
            continue
        plot_confusion_pair(
            keras["confusion_matrix"],
            classes["confusion_matrix"],
            classes["names"],
            staging / Path(Run.variant_confusion(result.name)).relative_to(Run.EDGE),
            ("Keras", result.name),
            f"Test split: Keras and {result.name}",
        )


def _measured(
    content: bytes, variant: Variant, standardization: Any, output: Any, inputs: _RunInputs, keras_outputs: np.ndarray
) -> tuple[EdgeModel, Parity | AnomalyParity | RegressionParity]:
    """The runtime model of a converted variant and its parity with Keras on the test split."""
    edge_model = EdgeModel(
        content,
        list(inputs.data.get("class_names") or []),
        source=variant.filename,
        threshold=inputs.threshold,
        front_end=inputs.data.get("front_end"),
        standardization=standardization,
        target_names=inputs.data.get("target_names"),
        output_standardization=output,
    )
    parity = TASKS[inputs.task.name].function("parity")(
        edge_model, variant, inputs.x_test, inputs.y_test, keras_outputs, inputs.threshold
    )
    return edge_model, parity


def _layer_errors(model: Any, standardization: Any, edge_model: EdgeModel, x: np.ndarray) -> list[LayerError]:
    """The quantization report of one full-integer variant: its activations against a float32 conversion of the
    same Keras graph, on ``x`` (raw examples, prepared as each model takes them)."""
    float_content = convert_model(model, VARIANTS["float32"])
    batch = edge_model.as_batch(x[:QUANTIZATION_EXAMPLES])
    float_inputs = batch if standardization is None else standardization.apply(batch)
    return layer_errors(float_content, edge_model.content, float_inputs, edge_model.quantize(batch))


def _micro(
    staging: Path, run_name: str, result: VariantResult, model: EdgeModel, x_test: np.ndarray
) -> tuple[MicroCheck, list[str]]:
    """Check a full-integer variant on the TFLite Micro host interpreter (unless it uses an operator TFLite
    Micro has no int8 kernel for) and write it as a C array; return the check and the files' names."""
    unsupported = result.operators.micro_int8_unsupported
    micro = (
        MicroCheck(False, f"not run on TFLite Micro: it has no int8 kernel for {', '.join(unsupported)}")
        if unsupported
        else micro_check(model, x_test[:MICRO_EXAMPLES])
    )
    return micro, write_c_array(staging, run_name, result.name, model, micro)


def _swap_in(staging: Path, target: Path) -> Path:
    """Put ``staging`` in the place of ``target``: an atomic exchange where the system has one, so a kill at any
    instant leaves the old ``edge/`` or the new one (:func:`recipes.rundir.replace_folder`)."""
    return replace_folder(staging, target)
