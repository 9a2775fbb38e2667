"""The registry of ``.tflite`` variants: one row per variant, read by conversion, parity and the CLI.

Each row names the converter settings (as plain data, so this module imports no TensorFlow), the
file it is written to, the options it accepts and the parity tolerance it is held to against the
Keras model. A classifier's tolerances were measured on the digits MLP (see ``BENCHMARKS.md``) and are
enforced by ``tests/test_edge_export.py``; an anomaly detector's (AUC and the decisions at the threshold)
on the ``machine`` autoencoder, enforced by ``tests/test_edge_anomaly.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.device.errors import UserError, unknown_choice

DEFAULT_VARIANTS = ("float32", "int8")
ALL = "all"
MIN_CALIBRATION_WARNING = 100
DEFAULT_CALIBRATION_SAMPLES = 300


@dataclass(frozen=True)
class ClassifierTolerance:
    """How far a classifier's variant may be from Keras on the test split.

    Args:
        max_abs_diff: largest allowed absolute difference of any output probability.
        max_accuracy_drop: largest allowed drop of test accuracy below Keras's, in percentage points.
    """

    max_abs_diff: float
    max_accuracy_drop: float


@dataclass(frozen=True)
class AnomalyTolerance:
    """How far an anomaly detector's variant may be from Keras on the test split.

    Args:
        max_auc_drop: largest allowed drop of the test AUC below Keras's.
        min_decision_agreement: smallest allowed share of test examples whose decision (score at or above the
            threshold) is Keras's.
    """

    max_auc_drop: float
    min_decision_agreement: float


@dataclass(frozen=True)
class RegressionTolerance:
    """How far a regression's variant may be from Keras on the test split.

    Args:
        max_relative_error: largest allowed mean absolute difference from Keras's values, in units of each
            target's standard deviation on the test split.
        max_r2_drop: largest allowed drop of the test R² below Keras's.
    """

    max_relative_error: float
    max_r2_drop: float


@dataclass(frozen=True, kw_only=True)
class Variant:
    """How one variant is converted, stored and judged.

    Args:
        name: the name used on the command line, e.g. ``"int8"``.
        description: one line for tables and help.
        optimize: whether the converter's default optimization (weight quantization) is on.
        weight_type: ``"float16"`` to store weights as float16, else None.
        full_integer: full-integer quantization with a representative data set (int8 kernels only).
        options: the export options this variant accepts besides the common ones.
        tolerances: per task of :data:`recipes.tasks.TASKS`, the tolerance it is held to against Keras
            (:class:`ClassifierTolerance`, :class:`AnomalyTolerance`, :class:`RegressionTolerance`); a task it
            has none for is one the variant does not export.
        per_channel_trained: the weights were trained on the converter's per-channel grid (quantization-aware
            training), so export never rewrites them per tensor.
    """

    name: str
    description: str
    optimize: bool
    weight_type: str | None
    full_integer: bool
    options: tuple[str, ...] = ()
    tolerances: dict[str, ClassifierTolerance | AnomalyTolerance | RegressionTolerance]
    per_channel_trained: bool = False

    @property
    def filename(self) -> str:
        """The variant's file inside ``edge/``, e.g. ``model_int8.tflite``."""
        return f"model_{self.name}.tflite"

    def tolerance(self, task: str):
        """The tolerance of ``task`` (a name of :data:`recipes.tasks.TASKS`).

        Raises:
            UserError: the variant is not exported for that task (compressed variants: classifiers only).
        """
        if task not in self.tolerances:
            raise UserError(f"the {self.name} variant is not exported for a {task} task; choose another variant")
        return self.tolerances[task]


def _tolerances(classifier: tuple[float, float], anomaly: tuple[float, float], regression: tuple[float, float] | None):
    found = {"classification": ClassifierTolerance(*classifier), "anomaly": AnomalyTolerance(*anomaly)}
    return found | ({"regression": RegressionTolerance(*regression)} if regression else {})


# Classifier tolerances: float32 is the same arithmetic in another runtime (measured max diff ~4e-7).
# float16 rounds each weight to an 11-bit significand (relative error <= 2**-11 ~ 4.9e-4); measured
# max diff ~3e-4 on probabilities, limit 5e-3. dynamic stores int8 weights and quantizes activations
# per batch on the fly; measured ~1.2e-2, limit 5e-2. int8 quantizes every activation to 256 levels and
# the softmax output to steps of 1/256 ~ 3.9e-3; measured ~2.5e-2 on the digits MLP, and 0.138 on one clip of 216
# (the rest below 0.06, accuracy 0.46 points lower) for ds_cnn's nine quantized layers on espeak-ng speech
# (benchmarks/speech.py): limit 0.25, accuracy within 1 point. A wrong conversion (a lost z-score, swapped
# channels) moves probabilities by far more, and the accuracy with them.
# Anomaly tolerances (AUC drop, decision agreement), measured on the machine autoencoder over six runs (10 and
# 30 epochs, seeds 0-2): float32, float16 and dynamic moved the AUC by at most 1.3e-4 and agreed on every decision
# (limits 0.001/0.99, 0.002/0.99, 0.005/0.98: a score within rounding of the threshold may flip); int8 with
# the anomaly calibration (edge/anomaly.py) lost at most 7e-4 AUC and agreed on 97.8-100%: limits 0.01/0.97.
# Regression tolerances (mean |difference| from Keras in units of each target's deviation, R² drop), measured on
# diabetes (seeds 0-3) and Friedman #1 with one and two targets (benchmarks/regression_parity.py): float32 moved
# values by ~3e-7 sigma (limit 1e-4), float16 ~4e-4 (5e-3, R² 2e-3), dynamic ~5e-3 (0.05, R² 0.01), int8 with
# z-scored outputs at most 0.013 sigma and 0.003 R² (0.1, R² 0.02).
VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            name="float32",
            description="float32 weights and activations (reference)",
            optimize=False,
            weight_type=None,
            full_integer=False,
            tolerances=_tolerances((1e-5, 0.0), (0.001, 0.99), (1e-4, 1e-4)),
        ),
        Variant(
            name="float16",
            description="float16 weights, float32 compute",
            optimize=True,
            weight_type="float16",
            full_integer=False,
            tolerances=_tolerances((5e-3, 0.5), (0.002, 0.99), (5e-3, 2e-3)),
        ),
        Variant(
            name="dynamic",
            description="dynamic-range: int8 weights, float activations",
            optimize=True,
            weight_type=None,
            full_integer=False,
            tolerances=_tolerances((5e-2, 1.0), (0.005, 0.98), (0.05, 0.01)),
        ),
        Variant(
            name="int8",
            description="full integer: int8 weights and activations (TFLite Micro)",
            optimize=True,
            weight_type=None,
            full_integer=True,
            options=("calibration_samples", "float_io"),
            tolerances=_tolerances((0.25, 1.0), (0.01, 0.97), (0.1, 0.02)),
        ),
    )
}

# Compressed variants: the int8 conversion of a model fine-tuned by edge.compress (``--prune``, ``--qat``),
# not chosen by --quantization. A fine-tuned model is a different function from the Keras model, so its
# outputs have no difference limit (1.0: probabilities differ by at most 1); its accuracy is held to
# int8's: within 1 point of Keras. Compression fine-tunes classifiers only, so they have no other tolerance.
_COMPRESSED = {"classification": ClassifierTolerance(1.0, 1.0)}
COMPRESSED_VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            name="int8_pruned",
            description="int8 after magnitude pruning (tfmot)",
            optimize=True,
            weight_type=None,
            full_integer=True,
            options=("calibration_samples", "float_io"),
            tolerances=_COMPRESSED,
        ),
        Variant(
            name="int8_qat",
            description="int8 after quantization-aware training (tfmot)",
            optimize=True,
            weight_type=None,
            full_integer=True,
            options=("calibration_samples", "float_io"),
            tolerances=_COMPRESSED,
            per_channel_trained=True,
        ),
        Variant(
            name="int8_pruned_qat",
            description="int8 after pruning, then sparsity-preserving QAT (tfmot)",
            optimize=True,
            weight_type=None,
            full_integer=True,
            options=("calibration_samples", "float_io"),
            tolerances=_COMPRESSED,
            per_channel_trained=True,
        ),
    )
}


def parse_variants(text: str) -> list[str]:
    """Parse ``--quantization``: a comma list of variant names, or ``all``.

    Args:
        text: e.g. ``"float32,int8"``, ``"int8"`` or ``"all"``.

    Returns:
        The names in registry order, without duplicates.

    Raises:
        UserError: an empty list or an unknown name (the closest valid name is suggested).
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise UserError(f"--quantization is empty; give a comma list of {', '.join(VARIANTS)} or '{ALL}'")
    if ALL in names:
        return list(VARIANTS)
    for name in names:
        if name not in VARIANTS:
            raise unknown_choice("variant", name, [*VARIANTS, ALL])
    return [name for name in VARIANTS if name in names]


def check_options(names: list[str], calibration_samples: int, float_io: bool) -> None:
    """Refuse export options that no chosen variant accepts or that make a variant impossible.

    Raises:
        UserError: a negative sample count, int8 without calibration samples, or ``--float-io``
            without a variant that accepts it.
    """
    if calibration_samples < 0:
        raise UserError(f"--calibration-samples is {calibration_samples}; give a count >= 1, e.g. 300")
    chosen = [VARIANTS[name] for name in names]
    if calibration_samples == 0 and any(variant.full_integer for variant in chosen):
        raise UserError(
            "int8 needs representative data but --calibration-samples is 0; "
            f"give e.g. --calibration-samples {DEFAULT_CALIBRATION_SAMPLES}"
        )
    if float_io and not any("float_io" in variant.options for variant in chosen):
        raise UserError("--float-io applies to int8 only; add int8 to --quantization or drop --float-io")
